"""How much disk an EC2 compute environment's instances give a job, for checking `disk_mb`.

On EC2, Batch jobs write to the instance's volume (Docker's storage on the root volume of the
ECS-optimized AMI), so the most one job can use is that volume's size. It comes from the compute
environment's launch template when it sets block devices, else from the AMI Batch picks by
default, whose root volume is 30 GiB. With a custom AMI and no sized launch template the size is
unknown and nothing is checked. Fargate jobs are sized by ephemeral storage instead (21-200 GiB),
which the Snakemake resource mapping handles. The local cloud declares its host's free disk in a
compute-environment tag, as it does for vCPUs and memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# Root volume of the ECS-optimized Amazon Linux 2 and 2023 AMIs Batch uses by default.
DEFAULT_AMI_ROOT_GIB = 30
LOCAL_HOST_DISK_TAG = "localcloud:diskMiB"
_log = logging.getLogger(__name__)


def ce_disk_mib(ce: dict[str, Any], ec2: Callable[[], Any] | None = None) -> int | None:
    """The largest disk in MiB one job can get in compute environment `ce`; None: unknown.

    `ec2` makes an EC2 client, called only when the environment names a launch template.
    """
    tags = ce.get("tags") or {}
    if LOCAL_HOST_DISK_TAG in tags:
        return int(tags[LOCAL_HOST_DISK_TAG])
    resources = ce.get("computeResources") or {}
    if ce.get("type") == "UNMANAGED" or not resources:
        return None
    if str(resources.get("type", "EC2")).startswith("FARGATE"):
        return None
    template = resources.get("launchTemplate") or {}
    if template and ec2 is None:
        return None
    if template and ec2 is not None:
        try:
            sized = _template_volume_gib(ec2(), template)
        except _Unreadable:
            return None
        if sized is not None:
            return sized * 1024
    if _custom_ami(resources):
        return None
    return DEFAULT_AMI_ROOT_GIB * 1024


class _Unreadable(Exception):
    """The launch template could not be read."""


def _custom_ami(resources: dict[str, Any]) -> bool:
    overrides = [c.get("imageIdOverride") for c in resources.get("ec2Configuration") or []]
    return bool(resources.get("imageId")) or any(overrides)


def _template_volume_gib(client: Any, template: dict[str, Any]) -> int | None:
    """The largest EBS volume size the launch template sets, or None when it sets none."""
    request: dict[str, Any] = {"Versions": [str(template.get("version") or "$Default")]}
    if template.get("launchTemplateId"):
        request["LaunchTemplateId"] = template["launchTemplateId"]
    elif template.get("launchTemplateName"):
        request["LaunchTemplateName"] = template["launchTemplateName"]
    else:
        return None
    try:
        reply = client.describe_launch_template_versions(**request)
    except (ClientError, BotoCoreError) as error:
        # Without ec2:DescribeLaunchTemplateVersions the size is unknown, which only skips a
        # check; it must not stop the run.
        _log.warning("disk requests are not checked: cannot read launch template: %s", error)
        raise _Unreadable from None
    versions = reply.get("LaunchTemplateVersions", [])
    sizes = [
        int(mapping["Ebs"]["VolumeSize"])
        for version in versions
        for mapping in (version.get("LaunchTemplateData") or {}).get("BlockDeviceMappings", [])
        if (mapping.get("Ebs") or {}).get("VolumeSize")
    ]
    return max(sizes) if sizes else None
