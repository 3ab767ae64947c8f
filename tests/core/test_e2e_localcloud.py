"""The Batch core end to end on the local cloud: preflight, the spec through S3, the launcher
inside the job, polling, logs from CloudWatch, the report, failures, spot retries and cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.submitter import BatchSubmitter
from snakemake_executor_awsbatch.taskspec import (
    LaunchSpec,
    RetryPolicy,
    StagedFile,
    StagingManifest,
    TaskSpec,
)
from tests.core.batch_wait import wait_finished

pytestmark = pytest.mark.e2e


def _bucket(cloud: LocalCloud) -> str:
    # Bucket names are global across the local clouds of one process, as on AWS.
    return f"core-e2e-{cloud.account_id}"


def _connect(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> tuple[BatchSubmitter, Any]:
    for key, value in cloud.client_env().items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=cloud.endpoint_url, region_name=cloud.region)
    if _bucket(cloud) not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=_bucket(cloud))
    sub = BatchSubmitter.create(region=cloud.region, endpoint_url=cloud.endpoint_url)
    return sub, s3


@pytest.fixture
def env(
    local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalCloud, BatchSubmitter, Any]]:
    sub, s3 = _connect(local_cloud, monkeypatch)
    yield local_cloud, sub, s3


def _task(cloud: LocalCloud, name: str, shell: str, **kw: Any) -> TaskSpec:
    prefix = f"s3://{_bucket(cloud)}/runs/{name}"
    staging = kw.pop("staging", None) or StagingManifest(prefix=prefix)
    launch = LaunchSpec(staging=staging, shell=shell)
    fields: dict[str, Any] = {"queue": cloud.queue_name, "vcpus": 1, "memory_mib": 256, **kw}
    return TaskSpec(name=name, image="local/tools:1", launch=launch, **fields)


def test_task_runs_with_staging_logs_and_report(env: Any) -> None:
    cloud, sub, s3 = env
    bucket = _bucket(cloud)
    s3.put_object(Bucket=bucket, Key="inputs/ref.fa", Body=b">chr1\nACGTACGT\n")
    s3.put_object(Bucket=bucket, Key="inputs/ref.fa.fai", Body=b"chr1\t8\t6\t8\t9\n")
    staging = StagingManifest(
        prefix=f"s3://{bucket}/runs/ok",
        inputs=(
            StagedFile(
                s3_uri=f"s3://{bucket}/inputs/ref.fa",
                path="ref.fa",
                secondary=((f"s3://{bucket}/inputs/ref.fa.fai", "ref.fa.fai"),),
            ),
        ),
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/outputs/len.txt", path="len.txt"),),
    )
    spec = _task(
        cloud, "ok", "cut -f2 ref.fa.fai > len.txt && echo staged-and-ran", staging=staging
    )
    sub.preflight([spec])
    state = wait_finished(sub, sub.submit(spec))
    assert state.status == "SUCCEEDED", state.explain()
    assert s3.get_object(Bucket=bucket, Key="outputs/len.txt")["Body"].read() == b"8\n"
    assert any("staged-and-ran" in line for line in sub.fetch_log(state))
    report = sub.fetch_report(spec)
    assert report is not None and report["status"] == "succeeded"
    assert report["files_in"] == 2 and report["unverified_downloads"] == 0
    assert report["batch_job_id"] == state.job_id
    record = json.loads(s3.get_object(Bucket=bucket, Key="runs/ok/job.json")["Body"].read())
    assert record["job_id"] == state.job_id and record["queue"] == cloud.queue_name


def test_failing_payload_is_explained_and_still_reported(env: Any) -> None:
    cloud, sub, _ = env
    spec = _task(cloud, "bad", "echo about-to-fail; exit 3")
    state = wait_finished(sub, sub.submit(spec))
    assert state.is_failed and state.exit_code == 3
    assert "exit code 3" in state.explain()
    assert any("about-to-fail" in line for line in sub.fetch_task_log(spec))
    report = sub.fetch_report(spec)
    assert report is not None and report["payload_exit_code"] == 3


def test_preflight_refuses_a_job_bigger_than_the_queue(env: Any) -> None:
    cloud, sub, _ = env
    with pytest.raises(UserError, match="can give at most"):
        sub.preflight([_task(cloud, "huge", "true", vcpus=cloud.vcpus * 2)])
    # Memory too: the local cloud declares its host's memory, so preflight can check it.
    with pytest.raises(UserError, match=f"at most {cloud.memory_mib} MiB"):
        sub.preflight([_task(cloud, "hungry", "true", memory_mib=cloud.memory_mib + 1)])
    sub.preflight([_task(cloud, "fits", "true", memory_mib=cloud.memory_mib)])
    with pytest.raises(UserError, match="does not exist"):
        sub.preflight([_task(cloud, "noq", "true", queue="no-such-queue")])


def test_cancel_ends_a_running_job(env: Any) -> None:
    cloud, sub, _ = env
    job_id = sub.submit(_task(cloud, "sleeper", "sleep 60"))
    deadline = time.monotonic() + 60
    while sub.poll([job_id])[job_id].status != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    sub.cancel([job_id], "test cancel")
    state = wait_finished(sub, job_id)
    assert state.is_failed


def test_spot_reclaim_is_retried_and_counted(
    local_cloud_factory: Callable[..., LocalCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = local_cloud_factory(chaos="spot=1.0,spot_max=1,spot_window=0.2")
    sub, _ = _connect(cloud, monkeypatch)
    spec = _task(cloud, "spotty", "sleep 1; echo done", retry=RetryPolicy(spot_retries=2))
    state = wait_finished(sub, sub.submit(spec))
    assert state.status == "SUCCEEDED", state.explain()
    assert len(state.attempts) == 2 and state.spot_reclaims == 1


def test_throttling_and_slowdown_are_ridden_out(
    local_cloud_factory: Callable[..., LocalCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = local_cloud_factory(chaos="throttle=0.3,s3_slowdown=0.1,seed=5")
    sub, s3 = _connect(cloud, monkeypatch)
    bucket = _bucket(cloud)
    s3.put_object(Bucket=bucket, Key="in/a.txt", Body=b"abc")
    staging = StagingManifest(
        prefix=f"s3://{bucket}/runs/chaos",
        inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/a.txt", path="a.txt"),),
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/b.txt", path="b.txt"),),
    )
    spec = _task(cloud, "chaos", "tr a-z A-Z < a.txt > b.txt", staging=staging)
    sub.preflight([spec])
    state = wait_finished(sub, sub.submit(spec))
    assert state.status == "SUCCEEDED", state.explain()
    assert s3.get_object(Bucket=bucket, Key="out/b.txt")["Body"].read() == b"ABC"
    assert sub.batch.pacer.retries > 0  # the injected 429s were met and retried


def test_missing_input_fails_with_the_stage_in_code(env: Any) -> None:
    cloud, sub, _ = env
    bucket = _bucket(cloud)
    staging = StagingManifest(
        prefix=f"s3://{bucket}/runs/noinput",
        inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/absent.bam", path="x.bam"),),
    )
    spec = _task(cloud, "noinput", "true", staging=staging)
    state = wait_finished(sub, sub.submit(spec))
    assert state.exit_code == 98 and "could not stage the inputs" in state.explain()
    report = sub.fetch_report(spec)
    assert report is not None and "absent.bam" in str(report["error"])


def test_launcher_jobs_after_the_first_are_forked_from_the_warm_interpreter(
    local_cloud_factory: Callable[..., LocalCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = local_cloud_factory()
    sub, _ = _connect(cloud, monkeypatch)
    for number in range(3):
        spec = _task(cloud, f"warm-{number}", f"echo job {number} > out.txt; exit {number}")
        state = wait_finished(sub, sub.submit(spec))
        assert state.exit_code == number, state.explain()
        report = sub.fetch_report(spec)
        assert report is not None and report["payload_exit_code"] == number
        assert report["batch_job_id"] == state.job_id  # its own AWS_BATCH_JOB_ID
    # The first started cold (and had the interpreter started); the others were forked from it.
    assert cloud.warm_starts == 2
    # Started ahead (as the Snakemake executor's local mode does), the first job is forked too.
    ahead = local_cloud_factory()
    ahead.prewarm_launchers()
    sub, _ = _connect(ahead, monkeypatch)
    state = wait_finished(sub, sub.submit(_task(ahead, "ahead-0", "true")))
    assert state.status == "SUCCEEDED" and ahead.warm_starts == 1
    # The same jobs with the forking turned off all start cold.
    cold = local_cloud_factory(warm_launchers=False)
    sub, _ = _connect(cold, monkeypatch)
    state = wait_finished(sub, sub.submit(_task(cold, "cold-0", "true")))
    assert state.status == "SUCCEEDED" and cold.warm_starts == 0
