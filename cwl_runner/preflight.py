"""Checks made before cwltool starts, so that a bad run stops before any job is submitted."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .efs import EfsLayout
from .fsaccess import is_efs


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def efs_locations(job_order_args: Sequence[str]) -> list[str]:
    """Every `efs://` string in the job order: in the job file (if one is given) and in the
    tool's own command-line inputs."""
    found: list[str] = []
    for arg in job_order_args:
        if os.path.isfile(arg) and arg.endswith((".yml", ".yaml", ".json")):
            try:
                with open(arg, encoding="utf-8") as handle:
                    document = YAML(typ="safe", pure=True).load(handle)
            except (OSError, YAMLError):
                continue  # cwltool reports an unreadable job order in its own words
            found.extend(s for s in _strings(document) if is_efs(s))
        else:
            found.extend(part for part in arg.split("=", 1)[-1:] if is_efs(part))
    return found


def check_efs_inputs(job_order_args: Sequence[str], layout: EfsLayout) -> None:
    """UserError for an `efs://` input with a malformed id or on a file system no job mounts."""
    for location in efs_locations(job_order_args):
        layout.target(location)
