"""`--awsbatch-local` with a spot reclaim injected and survived, and Ctrl-C terminating jobs."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from smk_helpers import SNAKEMAKE, batch_args, cli_env, run_snakemake

from snakemake_executor_awsbatch.localcloud import LocalCloud

pytestmark = pytest.mark.e2e

TINY = Path(__file__).parent / "workflows" / "tiny"


def test_local_mode_survives_a_spot_reclaim_and_leaves_outputs_in_the_workdir(
    tmp_path: Path,
) -> None:
    work = tmp_path / "tiny"
    shutil.copytree(TINY, work)
    args = [
        "--executor",
        "awsbatch",
        "--awsbatch-local",
        "--awsbatch-local-chaos",
        "spot=1.0,spot_max=1,seed=3",
        "--default-storage-provider",
        "s3",
        "--default-storage-prefix",
        "s3://smk-local-mode/run",
        "--seconds-between-status-checks",
        "1",
        "-j",
        "2",
        "--config",
        "pause=2",
    ]
    result = run_snakemake(work, args, None)
    assert result.returncode == 0, result.stdout[-6000:]
    assert re.search(r"survived 1 spot reclaim\(s\) and succeeded on attempt 2", result.stdout)
    assert (work / "out" / "a.txt").read_text() == "alpha\n"
    assert (work / "out" / "b.txt").read_text() == "alpha\nalpha\n"


def test_ctrl_c_terminates_submitted_jobs(local_cloud: LocalCloud, tmp_path: Path) -> None:
    work = tmp_path / "tiny"
    shutil.copytree(TINY, work)
    args = batch_args(local_cloud, "s3://smk-cancel/run", "-j", "1", "--config", "pause=120")
    out_path = tmp_path / "out.txt"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [SNAKEMAKE, *args], cwd=work, env=cli_env(local_cloud), stdout=out, stderr=out
        )
        try:
            job_id = _wait_for_submission(out_path, proc)
            batch = boto3.client("batch", **_client_kwargs(local_cloud))
            _wait_for_status(batch, job_id, {"RUNNING"})
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Terminating 1 AWS Batch job(s)." in out_path.read_text()
    job = _wait_for_status(batch, job_id, {"FAILED"})
    assert "cancelled" in job.get("statusReason", "")


def _wait_for_submission(out_path: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"submitted to AWS Batch as ([0-9a-f-]{36})", out_path.read_text())
        if found:
            return found.group(1)
        assert proc.poll() is None, out_path.read_text()[-4000:]
        time.sleep(0.5)
    raise AssertionError("no job was submitted: " + out_path.read_text()[-4000:])


def _wait_for_status(batch: object, job_id: str, wanted: set[str]) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = batch.describe_jobs(jobs=[job_id])["jobs"]  # type: ignore[attr-defined]
        if jobs and jobs[0]["status"] in wanted:
            return dict(jobs[0])
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} never reached {wanted}")


def _client_kwargs(cloud: LocalCloud) -> dict[str, str]:
    env = cloud.client_env()
    return {
        "endpoint_url": cloud.endpoint_url,
        "region_name": cloud.region,
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--awsbatch-queue", "no-such-queue"], "no-such-queue"),
        (["--set-threads", "a=999"], "asks for 999 vCPUs"),
        (["--awsbatch-efs", "fs-nothex:/ref"], "not a file system id"),
    ],
)
def test_preflight_stops_the_run_before_any_submission(
    local_cloud: LocalCloud, tmp_path: Path, extra: list[str], fragment: str
) -> None:
    work = tmp_path / "tiny"
    shutil.copytree(TINY, work)
    before = local_cloud.api_calls_path.read_text().count('"SubmitJob"')
    args = batch_args(local_cloud, "s3://smk-preflight/run", "-j", "2", *extra)
    result = run_snakemake(work, args, local_cloud)
    assert result.returncode != 0
    assert fragment in result.stdout, result.stdout[-3000:]
    assert "submitted to AWS Batch" not in result.stdout
    assert local_cloud.api_calls_path.read_text().count('"SubmitJob"') == before
