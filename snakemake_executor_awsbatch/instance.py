"""Where a job ran: EC2 instance metadata (IMDSv2) and the ECS task metadata, when reachable.

Both are asked with a very short timeout and skipped when absent, so a job off EC2 (the local
cloud, Fargate without IMDS) loses nothing but these fields.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

IMDS = "http://169.254.169.254/latest"
TIMEOUT = 0.3
_FIELDS = {
    "instance_type": "meta-data/instance-type",
    "instance_id": "meta-data/instance-id",
    "availability_zone": "meta-data/placement/availability-zone",
    "lifecycle": "meta-data/instance-life-cycle",
}


def _get(url: str, token: str | None) -> str:
    request = urllib.request.Request(url)
    if token:
        request.add_header("X-aws-ec2-metadata-token", token)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return bytes(response.read()).decode()


def instance_metadata() -> dict[str, Any]:
    """Instance type, id, zone and lifecycle (spot/on-demand), or {} when IMDS is unreachable."""
    if os.environ.get("AWSBATCH_NO_IMDS"):
        return {}
    out: dict[str, Any] = {}
    try:
        put = urllib.request.Request(
            f"{IMDS}/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
        with urllib.request.urlopen(put, timeout=TIMEOUT) as response:
            token = bytes(response.read()).decode()
        for name, path in _FIELDS.items():
            out[name] = _get(f"{IMDS}/{path}", token)
    except (OSError, ValueError):
        pass
    ecs = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if ecs:
        try:
            task = json.loads(_get(f"{ecs}/task", None))
            out["ecs_task_arn"] = task.get("TaskARN")
            out["availability_zone"] = out.get("availability_zone") or task.get("AvailabilityZone")
        except (OSError, ValueError):
            pass
    return out
