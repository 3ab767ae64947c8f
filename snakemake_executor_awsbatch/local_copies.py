"""Drop the submitting host's copies of storage files that only remote jobs read.

When a job runs in the Snakemake process (a localrule, or a job with `local()` inputs), Snakemake
writes its storage outputs to `.snakemake/storage/`, uploads them, and keeps the copies until the
last job that reads them has finished, in case that job also runs on this host. With this
executor no remote job reads them. They are not harmless either: while such a copy exists,
Snakemake counts the file as eligible for a checksum, and after every job that reads it records
metadata by asking S3 for its size once per output of that job (a HeadObject and a ListObjects
per input and output, on the main thread). In the germline workflow the reference and its six
indexes are read by every calling job, which made these about 180 of a run's 800 S3 calls.

So before a job is submitted, the copies of its storage inputs are removed unless a local job
still to run reads them; a later local job retrieves what it needs from S3 again, as Snakemake
does for any storage input it has no copy of. `--keep-storage-local-copies` keeps them all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

_log = logging.getLogger(__name__)


def drop_remote_only_copies(job: Any) -> list[str]:
    """Remove the local copies of `job`'s storage inputs that no unfinished local job reads.

    Returns the removed paths. Does nothing when the DAG does not expose which jobs read a file
    (a Snakemake version without `_storage_input_jobs`): keeping a copy is always safe.
    """
    dag = getattr(job, "dag", None)
    readers = getattr(dag, "_storage_input_jobs", None)
    if dag is None or readers is None or _keeps_local_copies(dag):
        return []
    removed: list[str] = []
    for item in job.input:
        if not getattr(item, "is_storage", False):
            continue
        path = str(item.file)
        if not os.path.isfile(path) or _read_locally(dag, readers.get(item, ())):
            continue
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    if removed:
        _log.debug("removed %d local copies read only by remote jobs", len(removed))
    return removed


def _keeps_local_copies(dag: Any) -> bool:
    settings = getattr(getattr(dag, "workflow", None), "storage_settings", None)
    return bool(getattr(settings, "keep_storage_local", False))


def _read_locally(dag: Any, readers: Iterable[Any]) -> bool:
    """Whether a job that runs on this host and has not finished reads the file."""
    return any(reader.is_local and not dag.finished(reader) for reader in readers)
