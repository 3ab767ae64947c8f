"""`awsbatch doctor` against the template deployed into moto: a healthy setup passes, and broken
setups (missing queue, disabled compute environment, too large a request) fail with the fix."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ops.capacity import Request, request_from_workflow
from snakemake_executor_awsbatch.ops.checks import Check, Status
from snakemake_executor_awsbatch.ops.doctor import (
    Clients,
    DoctorTarget,
    render_table,
    run_doctor,
)

REGION = "us-east-1"
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


@pytest.fixture(scope="module")
def account(deploy_template: Callable[..., dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A moto account with the template deployed (once per module), and its target."""
    saved = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    try:
        with mock_aws():
            stack = deploy_template(SpotMaxVcpus="128", OnDemandMaxVcpus="64")
            outputs = stack["outputs"]
            efs = boto3.client("efs", region_name=REGION)
            access_point = efs.describe_access_points(FileSystemId=outputs["FileSystemId"])[
                "AccessPoints"
            ][0]["AccessPointId"]
            target = DoctorTarget(
                queue=outputs["SpotQueueName"],
                bucket=outputs["BucketName"],
                efs_file_system_id=outputs["FileSystemId"],
                efs_access_point_id=access_point,
                job_role_arn=outputs["JobRoleArn"],
                request=Request(vcpus=8, memory_mib=30_000),
            )
            yield {"stack": stack, "target": target, "clients": Clients.create(region=REGION)}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_healthy_setup_has_no_failures(account: dict[str, Any]) -> None:
    checks = run_doctor(account["clients"], account["target"])
    failures = [c for c in checks if c.status is Status.FAIL]
    assert failures == []
    named = _by_name(checks)
    assert named["queue gx-spot"].status is Status.PASS
    assert named["compute env gx-spot"].status is Status.PASS
    assert named["compute env gx-ondemand"].status is Status.PASS
    assert named["fit gx-spot"].status is Status.PASS
    assert named["largest request"].status is Status.PASS
    assert named["bucket read/write"].status is Status.PASS
    assert named["bucket encryption"].detail == "default AES256"
    assert named["EFS mount targets"].detail == "2 mount target(s)"
    assert named["job role"].status is Status.PASS
    # moto's CloudFormation cannot create bucket policies, so the TLS-only check warns here.
    assert named["bucket TLS-only"].status is Status.WARN
    assert "DenyInsecureTransport" in named["bucket TLS-only"].fix


def test_missing_queue_fails_with_fix(account: dict[str, Any]) -> None:
    target = DoctorTarget(queue="no-such-queue", bucket=account["target"].bucket)
    checks = _by_name(run_doctor(account["clients"], target))
    queue = checks["job queue"]
    assert queue.status is Status.FAIL
    assert "'no-such-queue' not found" in queue.detail
    assert "infra/template.yaml" in queue.fix


def test_disabled_compute_environment_fails_with_enable_command(account: dict[str, Any]) -> None:
    batch = boto3.client("batch", region_name=REGION)
    batch.update_compute_environment(computeEnvironment="gx-spot", state="DISABLED")
    try:
        checks = _by_name(run_doctor(account["clients"], account["target"]))
    finally:  # the account is shared by the module's tests
        batch.update_compute_environment(computeEnvironment="gx-spot", state="ENABLED")
    env = checks["compute env gx-spot"]
    assert env.status is Status.FAIL
    assert "RUNNABLE" in env.detail
    assert "--compute-environment gx-spot --state ENABLED" in env.fix
    # The on-demand environment still fits the request, so the run itself can proceed.
    assert checks["largest request"].status is Status.PASS


def test_request_too_large_for_every_instance_fails(account: dict[str, Any]) -> None:
    target = DoctorTarget(
        queue=account["target"].queue,
        bucket=account["target"].bucket,
        request=Request(vcpus=16, memory_mib=2_000_000),
    )
    checks = _by_name(run_doctor(account["clients"], target))
    assert checks["fit gx-spot"].status is Status.FAIL
    assert "no instance type fits" in checks["fit gx-spot"].detail
    assert "instanceTypes" in checks["fit gx-spot"].fix
    assert checks["largest request"].status is Status.FAIL


def test_request_over_max_vcpus_names_the_setting(account: dict[str, Any]) -> None:
    target = DoctorTarget(queue="gx-ondemand", request=Request(vcpus=96, memory_mib=4096))
    checks = _by_name(run_doctor(account["clients"], target))
    fit = checks["fit gx-ondemand"]
    assert fit.status is Status.FAIL
    assert fit.detail == "maxvCpus 64 < 96 requested"
    assert "maxvCpus=97" in fit.fix


def test_missing_bucket_and_file_system_fail(account: dict[str, Any]) -> None:
    target = DoctorTarget(
        queue=account["target"].queue, bucket="no-such-bucket", efs_file_system_id="fs-00000000"
    )
    checks = _by_name(run_doctor(account["clients"], target))
    assert checks["bucket no-such-bucket"].status is Status.FAIL
    assert checks["bucket no-such-bucket"].detail == "bucket does not exist"
    assert checks["EFS fs-00000000"].status is Status.FAIL


def test_table_prints_a_fix_under_each_failure(account: dict[str, Any]) -> None:
    target = DoctorTarget(queue="no-such-queue")
    table = render_table(run_doctor(account["clients"], target))
    lines = table.splitlines()
    failing = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert failing
    for i in failing:
        assert lines[i + 1].strip().startswith("fix: ")
    assert lines[-1].startswith(f"{len(failing)} failed")


def test_no_credentials_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clients = Clients.create(region=REGION)
    checks = _by_name(run_doctor(clients, DoctorTarget()))
    assert checks["credentials"].status is Status.FAIL
    assert "aws configure" in checks["credentials"].fix


def test_request_from_snakefile_and_cwl(tmp_path: Path) -> None:
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        "rule a:\n    threads: 4\n    resources:\n        mem_mb=8000\n"
        "rule b:\n    threads: 16\n    resources:\n        mem_mib=2048\n"
    )
    assert request_from_workflow(snakefile) == Request(16.0, 7630, source=str(snakefile))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "big.smk").write_text("rule c:\n    resources:\n        mem_gb=64\n")
    snakefile.write_text(snakefile.read_text() + 'include: "rules/big.smk"\n')
    assert request_from_workflow(snakefile).memory_mib == 61036  # 64 GB in MiB, rounded up
    tool = tmp_path / "tool.cwl"
    tool.write_text(
        "class: CommandLineTool\nrequirements:\n  ResourceRequirement:\n"
        "    coresMin: 6\n    ramMin: 12000\nbaseCommand: [true]\ninputs: []\noutputs: []\n"
    )
    assert request_from_workflow(tool) == Request(6.0, 12000, source=str(tool))
    workflow = tmp_path / "main.cwl"
    workflow.write_text(
        "class: Workflow\ninputs: []\noutputs: []\nsteps:\n  a:\n    run: tool.cwl\n"
        "    in: []\n    out: []\n"
    )
    assert request_from_workflow(workflow).memory_mib == 12000
    empty = tmp_path / "empty.cwl"
    empty.write_text("class: CommandLineTool\nbaseCommand: [true]\ninputs: []\noutputs: []\n")
    with pytest.raises(UserError, match="--max-vcpus"):
        request_from_workflow(empty)


def test_image_check_finds_ecr_images_and_names_missing_ones(account: dict[str, Any]) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    repo = ecr.create_repository(repositoryName="awsbatch-genomics")["repository"]
    manifest = (
        '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    )
    ecr.put_image(repositoryName="awsbatch-genomics", imageManifest=manifest, imageTag="0.1.0")
    base = repo["repositoryUri"]
    clients = account["clients"]

    def image_check(image: str) -> Check:
        return _by_name(run_doctor(clients, DoctorTarget(queue="gx-spot", image=image)))["image"]

    assert image_check(f"{base}:0.1.0").status is Status.PASS
    missing = image_check(f"{base}:9.9.9")
    assert missing.status is Status.FAIL
    assert "docker push" in missing.fix
    assert image_check("debian:bookworm").status is Status.WARN
    other_region = base.replace(f".{REGION}.", ".eu-west-1.") + ":0.1.0"
    assert "queue's region" in image_check(other_region).fix
