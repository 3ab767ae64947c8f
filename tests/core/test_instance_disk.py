"""Disk a queue's EC2 instances give a job, and `disk_mb` requests refused before submission.

EC2 requests go through botocore's Stubber, so their shapes are checked against the service
model; the local cloud's declared disk is checked on the real local cloud.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from snakemake_executor_awsbatch.batch import BatchClient
from snakemake_executor_awsbatch.capacity import CapacityChecker
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.instance_disk import (
    DEFAULT_AMI_ROOT_GIB,
    LOCAL_HOST_DISK_TAG,
    ce_disk_mib,
)
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.ratelimit import BackoffPolicy, Pacer, RateLimiter
from snakemake_executor_awsbatch.settings import BatchConfig
from snakemake_executor_awsbatch.snakemake_resources import JobResources, task_spec
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagingManifest

EC2_CE = {"type": "MANAGED", "computeResources": {"type": "EC2", "maxvCpus": 16}}


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _with_template(template: dict[str, str], **resources: Any) -> dict[str, Any]:
    return {
        "type": "MANAGED",
        "computeResources": {"type": "EC2", "launchTemplate": template, **resources},
    }


def _versions(stub: Stubber, expected: dict[str, Any], sizes: list[int]) -> None:
    mappings = [
        {"DeviceName": f"/dev/xvd{c}", "Ebs": {"VolumeSize": n}}
        for c, n in zip("ab", sizes, strict=False)
    ]
    stub.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [{"LaunchTemplateData": {"BlockDeviceMappings": mappings}}]},
        expected,
    )


def test_default_ami_gives_its_root_volume() -> None:
    assert ce_disk_mib(EC2_CE) == DEFAULT_AMI_ROOT_GIB * 1024


def test_custom_ami_without_sized_template_is_unknown() -> None:
    custom = {"type": "MANAGED", "computeResources": {"type": "EC2", "imageId": "ami-1"}}
    override = {
        "type": "MANAGED",
        "computeResources": {"type": "SPOT", "ec2Configuration": [{"imageIdOverride": "ami-2"}]},
    }
    assert ce_disk_mib(custom) is None and ce_disk_mib(override) is None


def test_fargate_and_unmanaged_are_not_checked_here() -> None:
    assert ce_disk_mib({"type": "MANAGED", "computeResources": {"type": "FARGATE_SPOT"}}) is None
    assert ce_disk_mib({"type": "UNMANAGED"}) is None


def test_launch_template_volumes_decide(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    _versions(stub, {"LaunchTemplateId": "lt-0abc", "Versions": ["$Latest"]}, [30, 500])
    ce = _with_template({"launchTemplateId": "lt-0abc", "version": "$Latest"})
    assert ce_disk_mib(ce, lambda: client) == 500 * 1024
    _versions(stub, {"LaunchTemplateName": "genomics", "Versions": ["$Default"]}, [])
    # a template without block devices leaves the AMI's default root volume
    assert ce_disk_mib(_with_template({"launchTemplateName": "genomics"}), lambda: client) == (
        DEFAULT_AMI_ROOT_GIB * 1024
    )


def test_unreadable_launch_template_skips_the_check(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    stub.add_client_error("describe_launch_template_versions", "UnauthorizedOperation")
    ce = _with_template({"launchTemplateId": "lt-0abc"})
    assert ce_disk_mib(ce, lambda: client) is None  # unknown, not the default AMI's 30 GiB


def test_local_cloud_tag_wins() -> None:
    ce = {**EC2_CE, "tags": {LOCAL_HOST_DISK_TAG: "2048"}}
    assert ce_disk_mib(ce) == 2048


def test_oversized_disk_request_is_refused_on_the_local_cloud(local_cloud: LocalCloud) -> None:
    env = local_cloud.client_env()
    raw = boto3.client(
        "batch",
        endpoint_url=local_cloud.endpoint_url,
        region_name=local_cloud.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    pacer = Pacer(RateLimiter(1e6), BackoffPolicy(), sleep=lambda _s: None, rng=random.Random(0))
    checker = CapacityChecker(BatchClient(raw, pacer))
    limits = checker.limits(local_cloud.queue_name)
    assert limits.max_disk_mib is not None and limits.max_disk_mib > 0
    checker.check_fits("small", local_cloud.queue_name, 1, 256, disk_mib=1)
    with pytest.raises(UserError, match="MiB of disk but the instances of queue"):
        checker.check_fits("huge", local_cloud.queue_name, 1, 256, limits.max_disk_mib + 1)


def test_snakemake_disk_mb_becomes_the_ec2_disk_request() -> None:
    launch = LaunchSpec(staging=StagingManifest(prefix="s3://b/p/t"), shell="true")
    config = BatchConfig(queue="q", image="img:1")
    job = JobResources(rule="r", jobid=1, threads=1, resources={"disk_mb": 50_000})
    spec = task_spec(job, config, launch)
    assert spec.disk_mib == 47684  # 50,000 MB in MiB, rounded up
    assert spec.ephemeral_storage_gib is None  # EC2: nothing to reserve, only checked
