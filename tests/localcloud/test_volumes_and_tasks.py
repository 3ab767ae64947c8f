"""EFS volumes in a private mount namespace, and multi-container (ecsProperties) jobs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.helpers import client, log_lines, wait
from snakemake_executor_awsbatch.localcloud import LocalCloud


@pytest.fixture(scope="module")
def batch(local_cloud: LocalCloud) -> Any:
    return client(local_cloud, "batch")


@pytest.fixture(scope="module", autouse=True)
def remove_mount_points() -> Iterator[None]:
    """The engine creates missing container paths on the host: remove this module's (empty)."""
    yield
    for path in Path("/mnt").glob("localcloud-test-*"):
        with contextlib.suppress(OSError):
            path.rmdir()


def resources(vcpus: str = "1", memory: str = "128") -> list[dict[str, str]]:
    return [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}]


def test_efs_read_only_mount_reads_but_refuses_writes(local_cloud: LocalCloud, batch: Any) -> None:
    fs = local_cloud.efs_file_system_id
    refs = local_cloud.efs_root(fs) / "refs"
    refs.mkdir()
    (refs / "genome.fa").write_text(">chr1\nACGT\n")
    script = (
        "cat /mnt/localcloud-test-ref/genome.fa; "
        "if touch /mnt/localcloud-test-ref/new 2>/dev/null; then echo WROTE; exit 1; fi; "
        "echo write-refused; touch /mnt/localcloud-test-rw/out.txt"
    )
    arn = batch.register_job_definition(
        jobDefinitionName="efs-ro",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sh", "-c", script],
            "resourceRequirements": resources(),
            "volumes": [
                {
                    "name": "ref",
                    "efsVolumeConfiguration": {"fileSystemId": fs, "rootDirectory": "/refs"},
                },
                {"name": "scratch", "efsVolumeConfiguration": {"fileSystemId": fs}},
            ],
            "mountPoints": [
                {
                    "sourceVolume": "ref",
                    "containerPath": "/mnt/localcloud-test-ref",
                    "readOnly": True,
                },
                {
                    "sourceVolume": "scratch",
                    "containerPath": "/mnt/localcloud-test-rw",
                    "readOnly": False,
                },
            ],
        },
    )["jobDefinitionArn"]
    job = batch.submit_job(jobName="efs", jobQueue=local_cloud.queue_name, jobDefinition=arn)
    done = wait(batch, job["jobId"])
    lines = log_lines(client(local_cloud, "logs"), done["container"]["logStreamName"])
    assert done["status"] == "SUCCEEDED", lines
    assert lines == [">chr1", "ACGT", "write-refused"]
    assert not (refs / "new").exists()
    assert (local_cloud.efs_root(fs) / "out.txt").exists()
    assert done["container"]["mountPoints"][0]["readOnly"] is True


def test_unknown_efs_file_system_fails_to_start(local_cloud: LocalCloud, batch: Any) -> None:
    arn = batch.register_job_definition(
        jobDefinitionName="efs-missing",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["true"],
            "resourceRequirements": resources(),
            "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-missing"}}],
            "mountPoints": [{"sourceVolume": "v", "containerPath": "/mnt/x"}],
        },
    )["jobDefinitionArn"]
    job = batch.submit_job(
        jobName="efs-missing", jobQueue=local_cloud.queue_name, jobDefinition=arn
    )
    done = wait(batch, job["jobId"])
    assert done["status"] == "FAILED"
    assert done["statusReason"] == "Task failed to start"
    assert "fs-missing" in done["container"]["reason"]


def test_multi_container_job_runs_in_depends_on_order(local_cloud: LocalCloud, batch: Any) -> None:
    containers = [
        {
            "name": "stage-in",
            "image": "python:3.11",
            "essential": False,
            "command": ["sh", "-c", "echo Ref::payload > /mnt/localcloud-test-shared/in.txt"],
            "resourceRequirements": resources(),
            "mountPoints": [
                {"sourceVolume": "shared", "containerPath": "/mnt/localcloud-test-shared"}
            ],
        },
        {
            "name": "tool",
            "image": "biocontainers/samtools",
            "essential": False,
            "dependsOn": [{"containerName": "stage-in", "condition": "SUCCESS"}],
            "command": [
                "sh",
                "-c",
                "tr a-z A-Z < /mnt/localcloud-test-shared/in.txt "
                "> /mnt/localcloud-test-shared/out.txt; echo tool-ran",
            ],
            "resourceRequirements": resources(),
            "mountPoints": [
                {"sourceVolume": "shared", "containerPath": "/mnt/localcloud-test-shared"}
            ],
        },
        {
            "name": "stage-out",
            "image": "python:3.11",
            "essential": True,
            "dependsOn": [{"containerName": "tool", "condition": "COMPLETE"}],
            "command": ["cat", "/mnt/localcloud-test-shared/out.txt"],
            "resourceRequirements": resources(),
            "mountPoints": [
                {"sourceVolume": "shared", "containerPath": "/mnt/localcloud-test-shared"}
            ],
        },
    ]
    arn = batch.register_job_definition(
        jobDefinitionName="multi",
        type="container",
        ecsProperties={
            "taskProperties": [{"containers": containers, "volumes": [{"name": "shared"}]}]
        },
    )["jobDefinitionArn"]
    job = batch.submit_job(
        jobName="multi",
        jobQueue=local_cloud.queue_name,
        jobDefinition=arn,
        parameters={"payload": "hello"},
        ecsPropertiesOverride={
            "taskProperties": [
                {
                    "containers": [
                        {"name": "tool", "environment": [{"name": "MODE", "value": "fast"}]}
                    ]
                }
            ]
        },
    )
    done = wait(batch, job["jobId"])
    assert done["status"] == "SUCCEEDED", done
    task = done["ecsProperties"]["taskProperties"][0]
    by_name = {c["name"]: c for c in task["containers"]}
    assert [by_name[n]["exitCode"] for n in ("stage-in", "tool", "stage-out")] == [0, 0, 0]
    assert {"name": "MODE", "value": "fast"} in by_name["tool"]["environment"]
    logs = client(local_cloud, "logs")
    assert log_lines(logs, by_name["stage-out"]["logStreamName"]) == ["HELLO"]
    assert log_lines(logs, by_name["tool"]["logStreamName"]) == ["tool-ran"]
    attempt = done["attempts"][0]["taskProperties"][0]
    assert sorted(c["name"] for c in attempt["containers"]) == ["stage-in", "stage-out", "tool"]


def test_multi_container_job_fails_when_essential_container_fails(
    local_cloud: LocalCloud, batch: Any
) -> None:
    containers = [
        {
            "name": "main",
            "image": "x",
            "essential": True,
            "command": ["sh", "-c", "exit 4"],
            "resourceRequirements": resources(),
        },
        {
            "name": "sidecar",
            "image": "x",
            "essential": False,
            "command": ["sleep", "30"],
            "resourceRequirements": resources(),
        },
    ]
    arn = batch.register_job_definition(
        jobDefinitionName="multi-fail",
        type="container",
        ecsProperties={"taskProperties": [{"containers": containers}]},
    )["jobDefinitionArn"]
    job = batch.submit_job(jobName="mf", jobQueue=local_cloud.queue_name, jobDefinition=arn)
    done = wait(batch, job["jobId"], timeout=20)
    assert done["status"] == "FAILED"
    by_name = {c["name"]: c for c in done["ecsProperties"]["taskProperties"][0]["containers"]}
    assert by_name["main"]["exitCode"] == 4
    assert done["stoppedAt"] - done["startedAt"] < 15_000


def test_efs_access_point_mounts_its_root(local_cloud: LocalCloud, batch: Any) -> None:
    fs = local_cloud.efs_file_system_id
    efs = client(local_cloud, "efs")
    point = efs.create_access_point(
        FileSystemId=fs, RootDirectory={"Path": "/shared/ap"}, ClientToken="localcloud-ap"
    )["AccessPointId"]
    (local_cloud.efs_root(fs) / "shared" / "ap").mkdir(parents=True)
    (local_cloud.efs_root(fs) / "shared" / "ap" / "hello.txt").write_text("from the access point")
    volume = {
        "name": "ap",
        "efsVolumeConfiguration": {
            "fileSystemId": fs,
            "transitEncryption": "ENABLED",
            "authorizationConfig": {"accessPointId": point, "iam": "DISABLED"},
        },
    }
    arn = batch.register_job_definition(
        jobDefinitionName="efs-ap",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["cat", "/mnt/localcloud-test-ap/hello.txt"],
            "resourceRequirements": resources(),
            "volumes": [volume],
            "mountPoints": [
                {"sourceVolume": "ap", "containerPath": "/mnt/localcloud-test-ap", "readOnly": True}
            ],
        },
    )["jobDefinitionArn"]
    job = batch.submit_job(jobName="ap", jobQueue=local_cloud.queue_name, jobDefinition=arn)
    done = wait(batch, job["jobId"])
    assert done["status"] == "SUCCEEDED", done
    lines = log_lines(client(local_cloud, "logs"), done["container"]["logStreamName"])
    assert lines == ["from the access point"]


def test_access_point_volume_rules_are_enforced(local_cloud: LocalCloud, batch: Any) -> None:
    base = {
        "fileSystemId": local_cloud.efs_file_system_id,
        "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0"},
    }
    for efs, words in (
        ({**base, "rootDirectory": "/data", "transitEncryption": "ENABLED"}, "rootDirectory"),
        ({**base, "transitEncryption": "DISABLED"}, "transitEncryption"),
    ):
        with pytest.raises(ClientError) as caught:
            batch.register_job_definition(
                jobDefinitionName="bad-ap",
                type="container",
                containerProperties={
                    "image": "x",
                    "command": ["true"],
                    "resourceRequirements": resources(),
                    "volumes": [{"name": "v", "efsVolumeConfiguration": efs}],
                },
            )
        assert caught.value.response["Error"]["Code"] == "ClientException"
        assert words in caught.value.response["Error"]["Message"]


def register_host_volume(batch: Any, name: str, source: str) -> str:
    return str(
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={
                "image": "busybox",
                "command": ["ls", "/mnt/localcloud-test-host"],
                "resourceRequirements": resources(),
                "volumes": [{"name": "h", "host": {"sourcePath": source}}],
                "mountPoints": [
                    {"sourceVolume": "h", "containerPath": "/mnt/localcloud-test-host"}
                ],
            },
        )["jobDefinitionArn"]
    )


def test_failed_bind_is_a_start_failure(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register_host_volume(batch, "bad-bind", "/nonexistent/localcloud-source")
    job = batch.submit_job(jobName="bad-bind", jobQueue=local_cloud.queue_name, jobDefinition=arn)
    done = wait(batch, job["jobId"])
    assert done["status"] == "FAILED"
    assert done["statusReason"] == "Task failed to start"
    assert done["container"]["reason"].startswith("CannotStartContainerError: binding")
    assert "exitCode" not in done["container"]


def test_volumes_without_mount_namespaces_fail_clearly(
    local_cloud: LocalCloud, batch: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from snakemake_executor_awsbatch.localcloud import process

    monkeypatch.setattr(process, "mount_namespaces_available", lambda: False)
    arn = register_host_volume(batch, "no-ns", str(tmp_path))
    job = batch.submit_job(jobName="no-ns", jobQueue=local_cloud.queue_name, jobDefinition=arn)
    done = wait(batch, job["jobId"])
    assert done["status"] == "FAILED"
    assert "private mount namespace" in done["container"]["reason"]


def test_file_system_created_through_the_efs_api_is_mountable(
    local_cloud: LocalCloud, batch: Any
) -> None:
    fs = client(local_cloud, "efs").create_file_system(CreationToken="localcloud-second")
    fs_id = fs["FileSystemId"]
    arn = batch.register_job_definition(
        jobDefinitionName="efs-second",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sh", "-c", "echo written > /mnt/localcloud-test-second/out.txt"],
            "resourceRequirements": resources(),
            "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": fs_id}}],
            "mountPoints": [{"sourceVolume": "v", "containerPath": "/mnt/localcloud-test-second"}],
        },
    )["jobDefinitionArn"]
    job = batch.submit_job(jobName="second", jobQueue=local_cloud.queue_name, jobDefinition=arn)
    assert wait(batch, job["jobId"])["status"] == "SUCCEEDED"
    assert (local_cloud.efs_root(fs_id) / "out.txt").read_text() == "written\n"
