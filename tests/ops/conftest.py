"""Shared helpers of the operations tests: the template deployed into moto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
REGION = "us-east-1"


def _deploy(stack_name: str = "gx", **parameters: str) -> dict[str, Any]:
    """Create a VPC with two subnets and the stack, inside an active moto mock."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    params = {"VpcId": vpc, "SubnetA": subnets[0], "SubnetB": subnets[1], **parameters}
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    described = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    }
    return {
        "status": described["StackStatus"],
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]},
        "resources": resources,
        "vpc": vpc,
        "subnets": subnets,
    }


@pytest.fixture(scope="session")
def deploy_template() -> Callable[..., dict[str, Any]]:
    """`deploy_template(stack_name="gx", **parameters)`: deploy into the active moto mock."""
    return _deploy
