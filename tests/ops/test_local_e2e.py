"""End to end on the local cloud: doctor, refs publish (twice), and the report of a real run."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from snakemake_executor_awsbatch.cli import main
from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud
from snakemake_executor_awsbatch.ops.refs import MARKER, EfsTarget, PublishRequest, publish
from snakemake_executor_awsbatch.submitter import BatchSubmitter
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagedFile, StagingManifest, TaskSpec

pytestmark = pytest.mark.e2e
BUCKET = "ops-e2e-bucket"
IMAGE = "localcloud/host:latest"
CE_FASTA = Path("/usr/share/htslib-test/test/ce.fa")


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    """A small local cloud with one bucket; boto3 is pointed at it for the module."""
    saved = dict(os.environ)
    with LocalCloud(vcpus=2, memory_mib=4096) as running:
        os.environ.update(running.client_env())
        os.environ.pop("AWS_PROFILE", None)
        _s3(running).create_bucket(Bucket=BUCKET)
        yield running
    os.environ.clear()
    os.environ.update(saved)


def _s3(cloud: LocalCloud) -> Any:
    return boto3.client("s3", endpoint_url=cloud.endpoint_url, region_name=cloud.region)


class CountingSubmitter:
    """The real submitter, counting submissions."""

    def __init__(self, inner: BatchSubmitter) -> None:
        self.inner = inner
        self.submitted = 0

    def preflight(self, specs: Any) -> None:
        self.inner.preflight(specs)

    def submit(self, spec: TaskSpec) -> str:
        self.submitted += 1
        return self.inner.submit(spec)

    def poll(self, ids: Any) -> Any:
        return self.inner.poll(ids)


def test_doctor_cli_on_local_cloud(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
    common += ["--queue", cloud.queue_name, "--bucket", BUCKET, "--efs", cloud.efs_file_system_id]
    assert main(["doctor", *common, "--max-vcpus", "2", "--max-memory", "2048"]) == 0
    out = capsys.readouterr().out
    assert "PASS    fit local-ce" in out
    assert main(["doctor", *common, "--max-vcpus", "8"]) == 1
    out = capsys.readouterr().out
    assert "local cloud has 2 vCPUs / 4096 MiB" in out
    assert "fix: restart it larger (`awsbatch local --vcpus 8" in out


def test_refs_publish_copies_once_and_skips_same_content(
    cloud: LocalCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fasta = tmp_path / "ce.fa"
    shutil.copy(CE_FASTA, fasta)
    submitter = CountingSubmitter(
        BatchSubmitter.create(region=cloud.region, endpoint_url=cloud.endpoint_url)
    )
    request = PublishRequest(
        source=fasta,
        target=EfsTarget.parse(f"{cloud.efs_file_system_id}:/refs/ce"),
        staging=f"s3://{BUCKET}/staging",
        queue=cloud.queue_name,
        image=IMAGE,
        build=True,
        timeout_seconds=120,
    )
    said: list[str] = []
    first = publish(request, _s3(cloud), submitter, say=said.append, poll_seconds=0.2)
    assert first["action"] == "published"
    assert submitter.submitted == 1
    published = cloud.efs_root(cloud.efs_file_system_id) / "refs" / "ce"
    names = {p.name for p in published.iterdir()}
    assert {"ce.fa", "ce.fa.fai", "ce.dict", "ce.fa.bwt", "ce.fa.sa", MARKER} <= names
    for entry in first["files"]:
        content = (published / entry["name"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]

    second = publish(request, _s3(cloud), submitter, say=said.append, poll_seconds=0.2)
    assert second["action"] == "unchanged"
    assert submitter.submitted == 1  # nothing submitted, nothing uploaded

    # With the S3 record lost, the job runs but finds the marker and leaves the copy alone.
    marker_mtime = (published / MARKER).stat().st_mtime_ns
    s3 = _s3(cloud)
    s3.delete_object(Bucket=BUCKET, Key=f"staging/refs/published/{request.target.record_key}")
    third = publish(request, s3, submitter, say=said.append, poll_seconds=0.2)
    assert third["action"] == "published"
    assert submitter.submitted == 2
    assert (published / MARKER).stat().st_mtime_ns == marker_mtime

    listing = ["refs", "list", "--staging", f"s3://{BUCKET}/staging"]
    assert main([*listing, "--endpoint-url", cloud.endpoint_url, "--region", cloud.region]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (cloud.efs_file_system_id, "/refs/ce", first["digest"][:12])
    ]


def _spec(run: str, name: str, shell: str, outputs: tuple[StagedFile, ...] = ()) -> TaskSpec:
    prefix = f"{run}/{name}-{uuid.uuid4().hex[:8]}"
    return TaskSpec(
        name=name,
        image=IMAGE,
        queue="local-queue",
        vcpus=1.0,
        memory_mib=512,
        launch=LaunchSpec(staging=StagingManifest(prefix=prefix, outputs=outputs), shell=shell),
        tags={"snakemake-rule": name},
    )


def test_report_of_a_real_run(
    cloud: LocalCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = f"s3://{BUCKET}/work/.awsbatch/run1"
    submitter = BatchSubmitter.create(region=cloud.region, endpoint_url=cloud.endpoint_url)
    specs = [
        _spec(
            run,
            "make_data",
            "head -c 1000000 /dev/zero > out.bin",
            (StagedFile(s3_uri=f"s3://{BUCKET}/work/out.bin", path="out.bin"),),
        ),
        _spec(run, "fails", "echo broken >&2; exit 3"),
    ]
    ids = [submitter.submit(s) for s in specs]
    deadline = time.monotonic() + 120
    while True:
        states = submitter.poll(ids)
        if all(s.is_finished for s in states.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [states[i].status for i in ids] == ["SUCCEEDED", "FAILED"]
    html = tmp_path / "report.html"
    code = main(["report", run, "--html", str(html), "--endpoint-url", cloud.endpoint_url])
    assert code == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    assert lines["make_data"].split()[1:3] == ["1", "0"]  # jobs, failed
    assert lines["fails"].split()[1:3] == ["1", "1"]
    assert "976.6 KiB" in lines["make_data"]  # bytes out: 1,000,000 bytes
    text = html.read_text()
    assert "make_data" in text and "<svg" in text
