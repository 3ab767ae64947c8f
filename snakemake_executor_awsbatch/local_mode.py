"""`--awsbatch-local`: run the embedded local cloud for one Snakemake run.

Snakemake builds its S3 storage provider right after parsing the executor settings and long
before the executor exists, so the cloud is started from the settings and the process's AWS
environment (`AWS_ENDPOINT_URL`, credentials, region) is pointed at it; boto3 clients made later,
Snakemake's S3 storage included, then reach the local cloud without any special setting. The one
cloud of a run lives in a module-level slot because Snakemake gives the settings and the executor
no other shared place; it is stopped when the process exits.

After the run the workflow's outputs are copied from the storage prefix into the working
directory, so that a local-cloud run leaves the same files behind as a plain local run.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.s3uri import parse_s3_uri

if TYPE_CHECKING:
    from snakemake_executor_awsbatch.localcloud import LocalCloud

_lock = threading.Lock()
_active: list[tuple[LocalCloud, dict[str, str | None]]] = []

# Keys under the storage prefix that belong to the machinery, not to the workflow.
SKIPPED_PREFIXES = (".awsbatch/", ".snakemake/", "snakemake-workflow-sources.")
COPY_WORKERS = 8
# Objects up to this size are copied with one GetObject; larger ones in parallel parts.
SINGLE_GET_BYTES = 16 * 2**20


def activate(chaos: str | None = None) -> LocalCloud:
    """Start the local cloud (once per process) and point this process's AWS clients at it."""
    from snakemake_executor_awsbatch.localcloud import LocalCloud

    with _lock:
        if _active:
            return _active[0][0]
        cloud = LocalCloud(chaos=chaos)
        cloud.__enter__()
        # Every job of the run is a launcher job: its interpreter's imports now overlap
        # Snakemake's parsing and DAG instead of delaying the first job.
        cloud.prewarm_launchers()
        # This process's own calls (the S3 storage plugin's checks, the executor's) skip the
        # loopback socket; jobs, in their own processes, still use the endpoint.
        cloud.serve_in_process()
        env = cloud.client_env()
        previous = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        _active.append((cloud, previous))
    # Handlers run last-registered first: the cloud stops, then the collection is skipped.
    atexit.register(skip_final_collection)
    atexit.register(deactivate)
    freeze_long_lived_objects()
    return cloud


def freeze_long_lived_objects() -> None:
    """Put every object made so far out of the cyclic garbage collector's reach (`gc.freeze`).

    A process hosting the local cloud holds moto, botocore's service models and Snakemake's DAG:
    a few million objects that live until the run ends. Every full collection scanned them all,
    about 0.1 s on Snakemake's scheduler thread, and the S3 storage plugin's churn (a new boto3
    resource class per object it looks at) set one off twice a run, once before the first job and
    once between two jobs (traced). Frozen objects are still freed by reference counting; only a
    reference cycle among them outlives the run, and the process ends with the run. Called when
    the cloud has started and again when the executor starts (the DAG is built by then).
    """
    gc.freeze()


def size_jobs_for_this_machine(workflow: Any, vcpus: float) -> int | None:
    """Without `--cores`, let Snakemake size jobs and groups for the local queue's `vcpus`.

    Snakemake sizes a group job for its widest level, stacking the members that would exceed
    its `--cores` (and `--resources`) limits; with a remote executor and no `--cores` it stacks
    nothing, so a group of eight one-thread calls asks for 8 vCPUs, which the local queue (this
    machine's vCPUs) cannot give and the executor refuses. A plain `snakemake -c N` run caps
    rules' threads and sizes groups within N cores; `--awsbatch-local` gives the same limit,
    the machine's vCPUs, unless `--cores` was passed. Jobs are sized as Snakemake creates them,
    after this call. Returns the limit set, or None when `--cores` was given.
    """
    limits = workflow.global_resources
    if limits["_cores"].value is not None:
        return None
    cores = max(int(vcpus), 1)
    limits["_cores"] = cores
    return cores


def skip_final_collection() -> None:
    """Let the exiting interpreter skip its last garbage collection over every live object.

    With moto's backends loaded that collection took 0.4-0.8 s after Snakemake had finished
    (measured from the last atexit handler to the process's exit). Frozen objects are still
    released by reference counting, and logging's own exit handler, which runs after this one,
    still flushes and closes every log file.
    """
    gc.freeze()


def active_cloud() -> LocalCloud:
    """The cloud started by `activate`."""
    with _lock:
        if not _active:
            raise UserError(
                "the local cloud is not running; pass --awsbatch-local to snakemake to start it."
            )
        return _active[0][0]


def deactivate() -> None:
    """Stop the local cloud and restore the AWS environment it replaced."""
    with _lock:
        if not _active:
            return
        cloud, previous = _active.pop()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    cloud.__exit__(None, None, None)


def copy_outputs(storage_prefix: str, workdir: Path, s3: Any | None = None) -> list[Path]:
    """Copy every workflow object under `storage_prefix` to the same relative path in `workdir`."""
    bucket, key_prefix = parse_s3_uri(storage_prefix)
    if key_prefix and not key_prefix.endswith("/"):
        key_prefix += "/"
    client = s3 if s3 is not None else boto3.client("s3")
    wanted: dict[str, tuple[Path, int]] = {}
    root = workdir.resolve()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
        for item in page.get("Contents", []):
            relative = str(item["Key"])[len(key_prefix) :]
            if not relative or relative.endswith("/") or relative.startswith(SKIPPED_PREFIXES):
                continue
            target = (root / relative).resolve()
            if root not in target.parents:
                continue  # a key with '..' must not escape the working directory
            wanted[str(item["Key"])] = (target, int(item.get("Size", 0)))

    def fetch(key: str) -> Path:
        target, size = wanted[key]
        target.parent.mkdir(parents=True, exist_ok=True)
        if size > SINGLE_GET_BYTES:
            client.download_file(bucket, key, str(target))
            return target
        # One GET: download_file would set up a transfer manager and its threads per file,
        # which for the many small logs and tables of a run cost more than the transfer.
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with target.open("wb") as handle:
            shutil.copyfileobj(body, handle, 1 << 20)
        return target

    # In parallel: this copy is the last thing a local run waits for, and most outputs are small.
    with ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
        return list(pool.map(fetch, wanted))
