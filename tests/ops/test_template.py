"""The infrastructure template: cfn-lint clean; deployed into moto, it creates connected resources.

moto's CloudFormation has no AWS::S3::BucketPolicy and does not apply a bucket's lifecycle rules or
public access block, and its EFS access point has no usable Ref; those parts are checked on the
parsed template instead.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint import api as cfnlint_api
from cfnlint.decode import cfn_yaml
from moto import mock_aws

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
REGION = "us-east-1"

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def _template() -> Any:
    return cfn_yaml.loads(TEMPLATE.read_text())


def test_template_passes_cfn_lint() -> None:
    matches = cfnlint_api.lint_file(TEMPLATE)
    assert [str(m) for m in matches] == []


def test_bucket_policy_denies_plain_http_and_old_tls() -> None:
    statements = _template()["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["DenyInsecureTransport"]["Effect"] == "Deny"
    assert by_sid["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert by_sid["DenyOldTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}


def test_bucket_blocks_public_access_and_tiers_by_data_type() -> None:
    props = _template()["Resources"]["DataBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    fastq = rules["fastq-tiering"]
    assert fastq["TagFilters"] == [{"Key": "genomics-data-type", "Value": "fastq"}]
    assert fastq["Transitions"][0]["StorageClass"] == "STANDARD_IA"
    assert fastq["ExpirationInDays"] == {"Ref": "FastqExpirationDays"}
    alignment = rules["alignment-tiering"]
    assert [t["StorageClass"] for t in alignment["Transitions"]] == ["STANDARD_IA", "GLACIER_IR"]
    assert "ExpirationInDays" not in alignment
    scratch = rules["scratch-expiry"]
    assert scratch["Prefix"] == "scratch/"
    assert scratch["ExpirationInDays"] == {"Ref": "ScratchExpirationDays"}
    # Only scratch/ expires by prefix: no rule may expire everything (an empty filter).
    assert all(
        "Prefix" in r or "TagFilters" in r or "AbortIncompleteMultipartUpload" in r
        for r in rules.values()
    )
    # VCFs have no rule: they stay in STANDARD.
    filters = [f["Value"] for r in rules.values() for f in r.get("TagFilters", [])]
    assert "variants" not in filters


@pytest.fixture(scope="module")
def stack(deploy_template: Callable[..., dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The template deployed into moto with a fresh VPC and two subnets."""
    with mock_aws():
        yield deploy_template(SpotMaxVcpus="128")


def test_stack_creates_queues_with_spot_first_then_on_demand(stack: dict[str, Any]) -> None:
    assert stack["status"] == "CREATE_COMPLETE"
    batch = boto3.client("batch", region_name=REGION)
    queues = {q["jobQueueName"]: q for q in batch.describe_job_queues()["jobQueues"]}
    spot_ce = stack["outputs"]["SpotComputeEnvironmentArn"]
    ondemand_ce = stack["outputs"]["OnDemandComputeEnvironmentArn"]
    spot_order = sorted(queues["gx-spot"]["computeEnvironmentOrder"], key=lambda o: o["order"])
    assert [o["computeEnvironment"] for o in spot_order] == [spot_ce, ondemand_ce]
    assert [o["computeEnvironment"] for o in queues["gx-ondemand"]["computeEnvironmentOrder"]] == [
        ondemand_ce
    ]
    assert all(q["state"] == "ENABLED" for q in queues.values())


def test_compute_environments_connect_to_network_roles_and_disk(stack: dict[str, Any]) -> None:
    batch = boto3.client("batch", region_name=REGION)
    envs = {
        c["computeEnvironmentName"]: c
        for c in batch.describe_compute_environments()["computeEnvironments"]
    }
    spot, ondemand = envs["gx-spot"], envs["gx-ondemand"]
    assert spot["computeResources"]["type"] == "SPOT"
    assert spot["computeResources"]["maxvCpus"] == 128
    assert ondemand["computeResources"]["type"] == "EC2"
    assert ondemand["computeResources"]["minvCpus"] == 0
    ec2 = boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    profile = iam.get_instance_profile(InstanceProfileName=stack["resources"]["InstanceProfile"])
    for env in (spot, ondemand):
        resources = env["computeResources"]
        assert env["state"] == "ENABLED"
        assert resources["subnets"] == stack["subnets"]
        assert resources["instanceRole"] == profile["InstanceProfile"]["Arn"]
        groups = ec2.describe_security_groups(GroupIds=resources["securityGroupIds"])
        assert {g["VpcId"] for g in groups["SecurityGroups"]} == {stack["vpc"]}
        template_id = resources["launchTemplate"]["launchTemplateId"]
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)
        ebs = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]["BlockDeviceMappings"][0][
            "Ebs"
        ]
        assert ebs["Encrypted"] is True
        assert ebs["VolumeSize"] == 200


def test_bucket_is_encrypted_and_job_role_is_scoped_to_it(stack: dict[str, Any]) -> None:
    bucket = stack["outputs"]["BucketName"]
    s3 = boto3.client("s3", region_name=REGION)
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    iam = boto3.client("iam", region_name=REGION)
    role_name = stack["outputs"]["JobRoleArn"].rsplit("/", 1)[1]
    policy = iam.get_role_policy(RoleName=role_name, PolicyName="data-bucket")["PolicyDocument"]
    if isinstance(policy, str):  # moto keeps a CloudFormation-made document as Python repr text
        policy = ast.literal_eval(policy)
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources == {
        "ListBucket": f"arn:aws:s3:::{bucket}",
        "ReadWriteObjects": f"arn:aws:s3:::{bucket}/*",
    }
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def test_file_system_is_encrypted_with_access_point_and_mount_targets(
    stack: dict[str, Any],
) -> None:
    fs_id = stack["outputs"]["FileSystemId"]
    efs = boto3.client("efs", region_name=REGION)
    fs = efs.describe_file_systems(FileSystemId=fs_id)["FileSystems"][0]
    assert fs["Encrypted"] is True
    assert fs["ThroughputMode"] == "elastic"
    points = efs.describe_access_points(FileSystemId=fs_id)["AccessPoints"]
    assert [p["RootDirectory"]["Path"] for p in points] == ["/refs"]
    targets = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]
    assert sorted(t["SubnetId"] for t in targets) == sorted(stack["subnets"])
    ec2 = boto3.client("ec2", region_name=REGION)
    efs_group = ec2.describe_security_groups(GroupIds=[stack["resources"]["EfsSecurityGroup"]])[
        "SecurityGroups"
    ][0]
    nfs = efs_group["IpPermissions"][0]
    assert (nfs["FromPort"], nfs["ToPort"]) == (2049, 2049)
    assert nfs["UserIdGroupPairs"][0]["GroupId"] == stack["resources"]["BatchSecurityGroup"]
    for target in targets:
        groups = efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])
        assert groups["SecurityGroups"] == [efs_group["GroupId"]]


def test_log_group_has_retention(stack: dict[str, Any]) -> None:
    logs = boto3.client("logs", region_name=REGION)
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/batch/gx")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        ("/aws/batch/gx", 30)
    ]


def test_file_system_policy_is_tls_only_without_root_access() -> None:
    policy = _template()["Resources"]["ReferenceFileSystem"]["Properties"]["FileSystemPolicy"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    allow = by_sid["AllowMountThroughMountTargets"]
    assert allow["Effect"] == "Allow"
    assert "elasticfilesystem:ClientRootAccess" not in allow["Action"]
    deny = by_sid["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
