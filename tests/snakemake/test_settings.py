"""Executor settings: validation into BatchConfig, tags, platform, and Snakemake's CLI/env path."""

from __future__ import annotations

import pytest

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.settings import (
    ExecutorSettings,
    parse_platform,
    parse_tags,
    resolve,
)
from snakemake_executor_awsbatch.taskspec import Platform

FS = "fs-0123456789abcdef0"


def test_resolve_parses_mounts_tags_and_platform() -> None:
    config = resolve(
        ExecutorSettings(
            queue="q",
            image="img:1",
            efs=[f"{FS}:/ref", f"{FS}:/scratch:/work:rw"],
            tags=["project=demo", "cost-centre=42"],
            platform="fargate",
            execution_role_arn="arn:aws:iam::123456789012:role/exec",
        )
    )
    assert config.queue == "q" and config.platform is Platform.FARGATE
    assert [m.container_path for m in config.mounts] == ["/ref", "/work"]
    assert dict(config.tags) == {"project": "demo", "cost-centre": "42"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"image": "i"}, "--awsbatch-queue"),
        ({"queue": "q"}, "--awsbatch-image"),
        ({"queue": "q", "image": "i", "spot_retries": 10}, "outside 0..9"),
        ({"queue": "q", "image": "i", "platform": "FARGATE"}, "execution role"),
        ({"queue": "q", "image": "i", "staging_prefix": "/tmp/x"}, "not an S3 URI"),
        ({"queue": "q", "image": "i", "efs": ["fs-zz:/ref"]}, "file system id"),
        ({"queue": "q", "image": "i", "max_calls_per_second": 0}, "positive"),
    ],
)
def test_bad_settings_are_one_sentence_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserError) as info:
        resolve(ExecutorSettings(**kwargs))  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_tags_limits() -> None:
    with pytest.raises(UserError, match="key=value"):
        parse_tags(["novalue"])
    with pytest.raises(UserError, match="not allowed"):
        parse_tags(["aws:reserved=1"])
    with pytest.raises(UserError, match="at most 50"):
        parse_tags([f"k{i}=v" for i in range(51)])
    assert parse_tags(["a=b=c"]) == {"a": "b=c"}


def test_platform_names() -> None:
    assert parse_platform(None) is Platform.EC2
    assert parse_platform("Fargate") is Platform.FARGATE
    with pytest.raises(UserError, match="EC2"):
        parse_platform("k8s")
