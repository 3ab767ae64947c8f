"""TaskSpec -> RegisterJobDefinition/SubmitJob with no network, shapes checked against botocore's
Batch model (Stubber validates every stubbed request), resources normalised, limits enforced."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.jobdef import (
    COMPANION_DIR,
    COMPANION_MEMORY_MIB,
    COMPANION_VOLUME,
    LAUNCHER_COMMAND,
    MAIN,
    MAIN_COMMAND,
    STAGE_IN,
    STAGE_OUT,
    job_definition_request,
    job_name,
    reserved_resources,
    submit_request,
)
from snakemake_executor_awsbatch.resources import gpus_from, memory_mib, normalise, snap_fargate
from snakemake_executor_awsbatch.taskspec import (
    EfsMount,
    LaunchSpec,
    Platform,
    RetryPolicy,
    StagedFile,
    StagingManifest,
    TaskSpec,
)

ROLE = "arn:aws:iam::123456789012:role/exec"


def spec(**kw: Any) -> TaskSpec:
    launch = LaunchSpec(staging=StagingManifest(prefix="s3://bkt/run/t1"), shell="echo hi")
    base: dict[str, Any] = {
        "name": "align/s1",
        "image": "repo/tools:1",
        "queue": "q",
        "launch": launch,
    }
    return TaskSpec(**{**base, **kw})


def _validate(op: str, request: dict[str, Any], response: dict[str, Any]) -> None:
    """Send a request through a Stubber: botocore rejects anything off the service model."""
    client = boto3.client(
        "batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stubber:
        stubber.add_response(op, response, request)
        getattr(client, op)(**request)


def test_job_definition_runs_the_launcher_and_validates() -> None:
    s = spec(
        mounts=(
            EfsMount(file_system_id="fs-1234", container_path="/refs"),
            EfsMount(
                file_system_id="fs-1234",
                container_path="/scratch",
                read_only=False,
                access_point_id="fsap-1",
                iam_auth=True,
            ),
        ),
        job_role_arn="arn:aws:iam::123456789012:role/job",
    )
    request = job_definition_request(s)
    props = request["containerProperties"]
    assert props["command"] == list(LAUNCHER_COMMAND)
    assert props["mountPoints"][0] == {
        "containerPath": "/refs",
        "sourceVolume": s.mounts[0].volume_name,
        "readOnly": True,
    }
    plain = props["volumes"][0]["efsVolumeConfiguration"]
    assert plain["transitEncryption"] == "ENABLED"  # TLS even without an access point
    ap = props["volumes"][1]["efsVolumeConfiguration"]
    assert ap["transitEncryption"] == "ENABLED" and "rootDirectory" not in ap
    assert ap["authorizationConfig"] == {"accessPointId": "fsap-1", "iam": "ENABLED"}
    name = request["jobDefinitionName"]
    _validate(
        "register_job_definition",
        request,
        {"jobDefinitionName": name, "jobDefinitionArn": f"arn:x:{name}:1", "revision": 1},
    )


def test_job_definition_name_is_a_content_hash() -> None:
    a = job_definition_request(spec())
    # Per-job values do not change the definition: it is reused across jobs and runs.
    b = job_definition_request(spec(name="other", vcpus=8, memory_mib=9000, queue="q2"))
    c = job_definition_request(spec(image="repo/tools:2"))
    assert a["jobDefinitionName"] == b["jobDefinitionName"]
    assert a["jobDefinitionName"] != c["jobDefinitionName"]


def test_submit_request_carries_a_pointer_and_resources_only() -> None:
    s = spec(
        vcpus=2.5,
        memory_mib=3000,
        gpus=1,
        timeout_seconds=10,
        retry=RetryPolicy(spot_retries=2),
        tags={"project": "germline"},
        depends_on=("j1", "j2"),
        launch=LaunchSpec(staging=StagingManifest(prefix="s3://bkt/run/t1"), shell="x" * 50_000),
    )
    request = submit_request(s, "awsbatch-abc:3", environment={"LOG_LEVEL": "debug"})
    assert request["parameters"] == {"taskspec": "s3://bkt/run/t1/spec.json"}
    assert request["containerOverrides"] == {
        "resourceRequirements": [
            {"type": "VCPU", "value": "3"},
            {"type": "MEMORY", "value": "3000"},
            {"type": "GPU", "value": "1"},
        ],
        "environment": [{"name": "LOG_LEVEL", "value": "debug"}],
    }
    assert "xxxx" not in json.dumps(request)  # the 50 kB payload travels through S3 only
    assert request["timeout"] == {"attemptDurationSeconds": 60}
    assert request["retryStrategy"] == {
        "attempts": 3,
        "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"},
            {"onReason": "*", "action": "EXIT"},
        ],
    }
    assert request["dependsOn"] == [{"jobId": "j1"}, {"jobId": "j2"}]
    assert request["jobName"] == "align_s1"
    _validate("submit_job", request, {"jobName": "align_s1", "jobId": "id-1"})


def test_user_job_definition_is_used_as_is() -> None:
    request = submit_request(spec(job_definition="mine:7"), "mine:7")
    assert request["jobDefinition"] == "mine:7"
    assert request["containerOverrides"]["command"] == [
        *LAUNCHER_COMMAND[:-1],
        "s3://bkt/run/t1/spec.json",
    ]


def test_retry_policies() -> None:
    assert "retryStrategy" not in submit_request(spec(), "d")
    anyf = submit_request(spec(retry=RetryPolicy(attempts=4, retry_on_any_failure=True)), "d")
    assert anyf["retryStrategy"] == {"attempts": 4}
    capped = submit_request(spec(retry=RetryPolicy(spot_retries=30)), "d")
    assert capped["retryStrategy"]["attempts"] == 10


def test_fargate_is_snapped_and_validates() -> None:
    s = spec(platform=Platform.FARGATE, execution_role_arn=ROLE, vcpus=3, memory_mib=5000)
    request = submit_request(s, "d")
    assert request["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "4"},
        {"type": "MEMORY", "value": "8192"},
    ]
    jd = job_definition_request(replace(s, ephemeral_storage_gib=500, assign_public_ip=True))
    assert jd["platformCapabilities"] == ["FARGATE"]
    assert jd["containerProperties"]["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert jd["containerProperties"]["ephemeralStorage"] == {"sizeInGiB": 200}
    name = jd["jobDefinitionName"]
    _validate(
        "register_job_definition",
        jd,
        {"jobDefinitionName": name, "jobDefinitionArn": f"arn:x:{name}:1", "revision": 1},
    )


def test_resource_normalisation() -> None:
    assert memory_mib(mem_mb=1000) == 954  # 10^9 bytes in MiB, rounded up
    assert memory_mib(mem_mib=1000, mem_mb=5) == 1000
    assert memory_mib() == 2048
    assert normalise(0.1, 100, 0, Platform.FARGATE).memory_mib == 512
    assert normalise(0.5, 4097, 0, Platform.FARGATE).vcpus == 1.0
    assert normalise(8, 62000, 0, Platform.FARGATE).vcpus == 16.0
    assert normalise(1.2, 1, 2, Platform.EC2).requirements() == [
        {"type": "VCPU", "value": "2"},
        {"type": "MEMORY", "value": "4"},
        {"type": "GPU", "value": "2"},
    ]
    assert gpus_from({"nvidia_gpu": "2"}) == 2 and gpus_from({}) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"platform": Platform.FARGATE, "execution_role_arn": ROLE, "vcpus": 32},
            "larger than any Fargate",
        ),
        ({"platform": Platform.FARGATE, "execution_role_arn": ROLE, "gpus": 1}, "no GPUs"),
        ({"depends_on": tuple(f"j{i}" for i in range(21))}, "over Batch's 20"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "at most 50"),
        ({"tags": {"aws:x": "v"}}, "tag key"),
        ({"vcpus": 0}, "not positive"),
    ],
)
def test_submit_errors_are_user_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        submit_request(spec(**kwargs), "d")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": Platform.FARGATE}, "execution role"),
        ({"image": ""}, "no container image"),
        ({"mounts": (EfsMount("fs-1", "refs"),)}, "not absolute"),
        ({"mounts": (EfsMount("fs-1", "/r"), EfsMount("fs-2", "/r"))}, "share the path"),
        (
            {"mounts": (EfsMount("fs-1", "/r", root_directory="/x", access_point_id="fsap-1"),)},
            "access point",
        ),
        (
            {"mounts": (EfsMount("fs-1", "/r", access_point_id="fsap-1", iam_auth=True),)},
            "no job role",
        ),
    ],
)
def test_job_definition_errors_are_user_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        job_definition_request(spec(**kwargs))


def test_overrides_over_8192_characters_never_reach_the_api() -> None:
    env = {f"V{i}": "x" * 100 for i in range(80)}
    with pytest.raises(UserError, match="8,192"):
        submit_request(spec(), "d", environment=env)


def test_job_names() -> None:
    assert job_name("rule:bwa.mem/3") == "rule_bwa_mem_3"
    assert job_name("_x") == "j_x"
    assert len(job_name("a" * 300)) == 128


# --- the companion layout (a tool image without Python) -----------------------------------

COMPANION = "repo/awsbatch:1"


def _register_ok(request: dict[str, Any]) -> None:
    name = request["jobDefinitionName"]
    _validate(
        "register_job_definition",
        request,
        {"jobDefinitionName": name, "jobDefinitionArn": f"arn:x:{name}:1", "revision": 1},
    )


def _containers(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    task = request["ecsProperties"]["taskProperties"][0]
    return {c["name"]: c for c in task["containers"]}


def test_companion_job_definition_shape_and_validates() -> None:
    s = spec(
        companion_image=COMPANION,
        mounts=(EfsMount(file_system_id="fs-1234", container_path="/refs"),),
        job_role_arn="arn:aws:iam::123456789012:role/job",
    )
    request = job_definition_request(s)
    assert "containerProperties" not in request
    task = request["ecsProperties"]["taskProperties"][0]
    assert task["taskRoleArn"] == s.job_role_arn
    assert [v["name"] for v in task["volumes"]] == [COMPANION_VOLUME, s.mounts[0].volume_name]
    c = _containers(request)
    assert list(c) == [STAGE_IN, MAIN, STAGE_OUT]
    assert c[STAGE_IN]["image"] == c[STAGE_OUT]["image"] == COMPANION
    assert c[MAIN]["image"] == "repo/tools:1" and c[MAIN]["command"] == list(MAIN_COMMAND)
    assert c[MAIN]["command"][0] == "/bin/sh"  # the tool image needs no Python
    assert c[STAGE_IN]["command"][-3:] == ["--phase", "in", "Ref::taskspec"]
    assert c[STAGE_OUT]["command"][-3:] == ["--phase", "out", "Ref::taskspec"]
    # Only stage-out is essential: its exit code is the job's, and it runs whatever main did.
    assert [c[n]["essential"] for n in (STAGE_IN, MAIN, STAGE_OUT)] == [False, False, True]
    assert c[MAIN]["dependsOn"] == [{"containerName": STAGE_IN, "condition": "SUCCESS"}]
    assert c[STAGE_OUT]["dependsOn"] == [{"containerName": MAIN, "condition": "COMPLETE"}]
    for container in c.values():
        assert container["mountPoints"][0]["containerPath"] == COMPANION_DIR
    assert c[MAIN]["mountPoints"][1]["containerPath"] == "/refs"  # EFS for the tool only
    assert len(c[STAGE_IN]["mountPoints"]) == 1
    _register_ok(request)


def test_companion_definition_holds_no_per_job_content() -> None:
    a = job_definition_request(spec(companion_image=COMPANION))
    other_launch = LaunchSpec(staging=StagingManifest(prefix="s3://bkt/run/t2"), shell="exit 1")
    b = job_definition_request(
        spec(companion_image=COMPANION, name="x", vcpus=8, memory_mib=9000, launch=other_launch)
    )
    assert a["jobDefinitionName"] == b["jobDefinitionName"]
    assert a["jobDefinitionName"] != job_definition_request(spec())["jobDefinitionName"]
    assert "exit 1" not in json.dumps(b) and "run/t2" not in json.dumps(b)


def test_companion_submit_request_sizes_each_container_and_validates() -> None:
    s = spec(companion_image=COMPANION, vcpus=3, memory_mib=6000, gpus=1)
    request = submit_request(s, "awsbatch-x:1", environment={"AWS_ENDPOINT_URL": "http://x"})
    assert "containerOverrides" not in request
    assert request["parameters"] == {"taskspec": "s3://bkt/run/t1/spec.json"}
    over = {
        c["name"]: c for c in request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]
    }
    assert over[MAIN]["resourceRequirements"] == [
        {"type": "VCPU", "value": "3"},
        {"type": "MEMORY", "value": "6000"},
        {"type": "GPU", "value": "1"},
    ]
    for name in (STAGE_IN, STAGE_OUT):
        assert over[name]["resourceRequirements"] == [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": str(COMPANION_MEMORY_MIB)},
        ]
    assert all(
        c["environment"] == [{"name": "AWS_ENDPOINT_URL", "value": "http://x"}]
        for c in over.values()
    )
    _validate("submit_job", request, {"jobName": "align_s1", "jobId": "id-1"})


def test_companion_on_fargate_is_an_allowed_task_size_and_validates() -> None:
    s = spec(
        companion_image=COMPANION,
        platform=Platform.FARGATE,
        execution_role_arn=ROLE,
        vcpus=1,
        memory_mib=2048,
    )
    request = submit_request(s, "d")
    over = request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]
    sizes = [{r["type"]: float(r["value"]) for r in c["resourceRequirements"]} for c in over]
    total_cpu = sum(x["VCPU"] for x in sizes)
    total_mem = int(sum(x["MEMORY"] for x in sizes))
    assert (total_cpu, total_mem) == snap_fargate(total_cpu, total_mem)
    main = sizes[1]
    assert main["VCPU"] >= 1 and main["MEMORY"] >= 2048
    jd = job_definition_request(replace(s, assign_public_ip=True))
    task = jd["ecsProperties"]["taskProperties"][0]
    assert task["executionRoleArn"] == ROLE
    assert task["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    _register_ok(jd)
    _validate("submit_job", request, {"jobName": "align_s1", "jobId": "id-1"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_definition": "mine:1"}, "drop one of the two"),
        (
            {
                "launch": LaunchSpec(
                    staging=StagingManifest(prefix="s3://b/p"), shell="true", workdir="/tmp/w"
                )
            },
            "only paths under /awsbatch-work",
        ),
        (
            {
                "launch": LaunchSpec(
                    staging=StagingManifest(
                        prefix="s3://b/p", inputs=(StagedFile(s3_uri="s3://b/x", path="/data/x"),)
                    ),
                    shell="true",
                )
            },
            "absolute path /data/x",
        ),
    ],
)
def test_companion_errors_are_user_errors(kwargs: dict[str, Any], message: str) -> None:
    s = spec(companion_image=COMPANION, **kwargs)
    with pytest.raises(UserError, match=message):
        submit_request(s, "d")


def test_companion_accepts_paths_on_the_shared_volume() -> None:
    launch = LaunchSpec(
        staging=StagingManifest(
            prefix="s3://b/p", inputs=(StagedFile(s3_uri="s3://b/x", path="/awsbatch-work/in/x"),)
        ),
        shell="true",
        workdir="/awsbatch-work/out",
    )
    s = spec(companion_image=COMPANION, launch=launch)
    assert submit_request(s, "d")["jobDefinition"] == "d"
    _register_ok(job_definition_request(s))


def test_reserved_resources_count_the_companions() -> None:
    assert reserved_resources(spec(vcpus=3, memory_mib=6000)) == normalise(3, 6000, 0, Platform.EC2)
    with_companions = reserved_resources(spec(companion_image=COMPANION, vcpus=3, memory_mib=6000))
    assert (with_companions.vcpus, with_companions.memory_mib) == (5.0, 6000 + 2 * 512)
    fargate = spec(
        companion_image=COMPANION, platform=Platform.FARGATE, execution_role_arn=ROLE, vcpus=1
    )
    total = reserved_resources(fargate)
    assert (total.vcpus, total.memory_mib) == snap_fargate(total.vcpus, total.memory_mib)
