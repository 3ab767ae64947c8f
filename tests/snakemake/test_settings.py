"""Executor settings: validation into BatchConfig, tags, platform, and Snakemake's CLI/env path."""

from __future__ import annotations

from dataclasses import replace

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


def _cli_settings(argv: list[str]) -> ExecutorSettings:
    from smk_helpers import register_plugin
    from snakemake.cli import get_argument_parser
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    register_plugin()
    args = get_argument_parser().parse_args(["--executor", "awsbatch", *argv])
    settings = ExecutorPluginRegistry().get_plugin("awsbatch").get_settings(args)
    assert isinstance(settings, ExecutorSettings)
    return settings


def test_snakemake_cli_fills_the_settings() -> None:
    settings = _cli_settings(
        [
            "--awsbatch-queue",
            "q",
            "--awsbatch-efs",
            f"{FS}:/ref",
            f"{FS}:/x:/y:rw",
            "--awsbatch-tags",
            "a=b",
            "--awsbatch-spot-retries",
            "3",
        ]
    )
    assert settings.queue == "q" and settings.spot_retries == 3
    assert settings.efs == [f"{FS}:/ref", f"{FS}:/x:/y:rw"]
    assert settings.tags == ["a=b"] and settings.local is False
    assert resolve(replace(settings, image="i")).direct_shell is True  # default: run directly
    off = _cli_settings(
        ["--awsbatch-queue", "q", "--awsbatch-image", "i", "--awsbatch-no-direct-shell"]
    )
    assert off.no_direct_shell is True and resolve(off).direct_shell is False


def test_environment_variables_fill_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAKEMAKE_AWSBATCH_QUEUE", "from-env")
    monkeypatch.setenv("SNAKEMAKE_AWSBATCH_IMAGE", "img:env")
    settings = _cli_settings(["--awsbatch-image", "img:cli"])
    assert settings.queue == "from-env"
    assert settings.image == "img:cli"  # the command line wins over the environment
