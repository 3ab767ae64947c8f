"""The companion layout: the launcher's `in`/`out` phases with moto S3 around a payload run by
/bin/sh as the tool container would run it, and one end-to-end run on the local cloud (three
containers of one Batch job sharing a task volume, EFS in the tool's container; images are not
real there, see docs/core.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from snakemake_executor_awsbatch.jobdef import EXIT_CODE_FILE, PAYLOAD_SCRIPT
from snakemake_executor_awsbatch.jobstate import EXIT_SPEC_UNREADABLE, EXIT_STAGE_IN_FAILED
from snakemake_executor_awsbatch.launch_phases import (
    EXIT_NO_RECORDED_CODE,
    stage_in,
    stage_out,
)
from snakemake_executor_awsbatch.launcher import main
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.submitter import BatchSubmitter
from snakemake_executor_awsbatch.taskspec import (
    EfsMount,
    LaunchSpec,
    StagedFile,
    StagingManifest,
    TaskSpec,
)
from tests.core.batch_wait import wait_finished


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _put_spec(s3: Any, bucket: str, spec: LaunchSpec) -> str:
    s3.put_object(Bucket=bucket, Key="t/spec.json", Body=spec.to_json().encode())
    return spec.staging.spec_uri


def _run_main(shared: Path) -> int:
    """What the `main` container does (jobdef.MAIN_COMMAND), with the shared dir at `shared`."""
    script = (
        f"/bin/sh {shared}/{PAYLOAD_SCRIPT}; code=$?; echo $code > {shared}/{EXIT_CODE_FILE}; "
        "exit $code"
    )
    return subprocess.run(["/bin/sh", "-c", script], check=False).returncode


def _manifest(bucket: str, **kw: Any) -> StagingManifest:
    return StagingManifest(prefix=f"s3://{bucket}/t", **kw)


def test_phases_stage_run_and_report(s3: Any, bucket: str, tmp_path: Path, capfd: Any) -> None:
    s3.put_object(Bucket=bucket, Key="in/reads.txt", Body=b"acgt\nttga\n")
    manifest = _manifest(
        bucket,
        inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/reads.txt", path="data/reads.txt"),),
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/upper.txt", path="upper.txt"),),
    )
    spec = LaunchSpec(
        staging=manifest,
        command=("tr", "a-z", "A-Z"),
        stdin="data/reads.txt",
        stdout="upper.txt",
        env={"GREETING": "it's here"},
    )
    uri = _put_spec(s3, bucket, spec)
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == 0
    script = (tmp_path / PAYLOAD_SCRIPT).read_text()
    assert "export GREETING='it'\"'\"'s here'" in script
    assert _run_main(tmp_path) == 0
    assert stage_out(uri, client=s3, shared=str(tmp_path)) == 0
    assert _get(s3, bucket, "out/upper.txt") == b"ACGT\nTTGA\n"
    report = json.loads(_get(s3, bucket, "t/report.json"))
    assert report["status"] == "succeeded" and report["payload_exit_code"] == 0
    assert report["files_in"] == 1 and report["bytes_in"] == 10 and report["files_out"] == 1
    assert report["stage_in_seconds"] > 0


def test_shell_payload_failure_uploads_log_not_outputs(
    s3: Any, bucket: str, tmp_path: Path, capfd: Any
) -> None:
    manifest = _manifest(
        bucket, outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/x.txt", path="x.txt"),)
    )
    spec = LaunchSpec(staging=manifest, shell="echo partial > x.txt; echo about-to-fail; exit 3")
    uri = _put_spec(s3, bucket, spec)
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == 0
    assert _run_main(tmp_path) == 3
    assert stage_out(uri, client=s3, shared=str(tmp_path)) == 3
    assert b"about-to-fail" in _get(s3, bucket, "t/log.txt")
    assert "about-to-fail" in capfd.readouterr().out  # echoed for CloudWatch
    report = json.loads(_get(s3, bucket, "t/report.json"))
    assert report["status"] == "payload_failed" and report["exit_code"] == 3
    assert "x.txt" not in str(s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_success_codes_apply(s3: Any, bucket: str, tmp_path: Path) -> None:
    spec = LaunchSpec(staging=_manifest(bucket), shell="exit 2", success_codes=(0, 2))
    uri = _put_spec(s3, bucket, spec)
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == 0
    assert _run_main(tmp_path) == 2
    assert stage_out(uri, client=s3, shared=str(tmp_path)) == 0


def test_no_recorded_code_is_explained(s3: Any, bucket: str, tmp_path: Path) -> None:
    spec = LaunchSpec(staging=_manifest(bucket), command=("true",))
    uri = _put_spec(s3, bucket, spec)
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == 0
    # `main` never ran (say its image has no /bin/sh): nothing recorded its exit code.
    assert stage_out(uri, client=s3, shared=str(tmp_path)) == EXIT_NO_RECORDED_CODE
    report = json.loads(_get(s3, bucket, "t/report.json"))
    assert report["status"] == "payload_not_run" and "/bin/sh" in report["error"]


def test_stage_in_failure_reports_itself(s3: Any, bucket: str, tmp_path: Path) -> None:
    manifest = _manifest(
        bucket, inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/missing.bam", path="m.bam"),)
    )
    uri = _put_spec(s3, bucket, LaunchSpec(staging=manifest, command=("true",)))
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == EXIT_STAGE_IN_FAILED
    assert not (tmp_path / PAYLOAD_SCRIPT).exists()
    report = json.loads(_get(s3, bucket, "t/report.json"))
    assert report["status"] == "stage_in_failed" and "missing.bam" in report["error"]
    assert b"missing.bam" in _get(s3, bucket, "t/log.txt")


def test_bad_env_name_fails_stage_in(s3: Any, bucket: str, tmp_path: Path) -> None:
    spec = LaunchSpec(staging=_manifest(bucket), command=("true",), env={"A-B": "1"})
    uri = _put_spec(s3, bucket, spec)
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == EXIT_STAGE_IN_FAILED
    assert "not a shell name" in json.loads(_get(s3, bucket, "t/report.json"))["error"]


def test_unreadable_spec_in_either_phase(s3: Any, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/t/spec.json"
    assert stage_in(uri, client=s3, shared=str(tmp_path)) == EXIT_SPEC_UNREADABLE
    assert stage_out(uri, client=s3, shared=str(tmp_path)) == EXIT_SPEC_UNREADABLE


@pytest.mark.parametrize(
    "argv", [["--phase", "sideways", "s3://a/b"], ["--phase", "in"], ["--phase", "in", "x"]]
)
def test_bad_phase_arguments(argv: list[str]) -> None:
    assert main(argv) == EXIT_SPEC_UNREADABLE


# --- end to end on the local cloud --------------------------------------------------------


@pytest.mark.e2e
def test_companion_job_on_the_local_cloud(
    local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = local_cloud
    for key, value in cloud.client_env().items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=cloud.endpoint_url, region_name=cloud.region)
    bucket = f"companion-{cloud.account_id}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/in.txt", Body=b"hello companion\n")
    sub = BatchSubmitter.create(region=cloud.region, endpoint_url=cloud.endpoint_url)
    # A reference on EFS, mounted read-only in the tool's container only.
    fs_id = cloud.efs_file_system_id
    (cloud.efs_root(fs_id) / "companion-ref.txt").write_text("ref line\n")
    refs = EfsMount(file_system_id=fs_id, container_path="/mnt/companion-refs")

    def task(name: str, shell: str) -> TaskSpec:
        staging = StagingManifest(
            prefix=f"s3://{bucket}/runs/{name}",
            inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/in.txt", path="in.txt"),),
            outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/{name}.txt", path="out.txt"),),
        )
        return TaskSpec(
            name=name,
            image="biocontainers/no-python:1",
            companion_image="project/awsbatch:1",
            launch=LaunchSpec(staging=staging, shell=shell),
            queue=cloud.queue_name,
            vcpus=1,
            memory_mib=256,
            mounts=(refs,),
        )

    good = task(
        "upper",
        "tr a-z A-Z < in.txt > out.txt && cat /mnt/companion-refs/companion-ref.txt >> out.txt"
        " && echo converted",
    )
    bad = task("fails", "echo partial > out.txt; echo about-to-fail; exit 3")
    sub.preflight([good, bad])
    good_id, bad_id = sub.submit(good), sub.submit(bad)

    state = wait_finished(sub, good_id)
    assert state.status == "SUCCEEDED", state.explain()
    assert _get(s3, bucket, "out/upper.txt") == b"HELLO COMPANION\nref line\n"
    report = sub.fetch_report(good)
    assert report is not None and report["status"] == "succeeded"
    assert report["batch_job_id"] == good_id and report["files_in"] == 1
    assert "converted" in sub.fetch_task_log(good)
    described = sub.batch.describe_jobs([good_id])[0]
    names = [c["name"] for c in described["ecsProperties"]["taskProperties"][0]["containers"]]
    assert names == ["stage-in", "main", "stage-out"]

    failed = wait_finished(sub, bad_id)
    assert failed.is_failed and failed.exit_code == 3, failed.explain()
    assert "about-to-fail" in sub.fetch_task_log(bad)
    bad_report = sub.fetch_report(bad)
    assert bad_report is not None and bad_report["payload_exit_code"] == 3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert "out/fails.txt" not in keys
