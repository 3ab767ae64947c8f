"""docs/settings.md is generated from the code and must be current."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from snakemake_executor_awsbatch.ops.settingsdoc import main, render
from snakemake_executor_awsbatch.settings import ExecutorSettings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_every_executor_setting_is_documented() -> None:
    page = render()
    for f in dataclasses.fields(ExecutorSettings):
        if "help" in f.metadata:
            assert f"`--awsbatch-{f.name.replace('_', '-')}`" in page
            assert f"`SNAKEMAKE_AWSBATCH_{f.name.upper()}`" in page
    for command in ("awsbatch doctor", "awsbatch refs publish", "awsbatch report"):
        assert f"### {command}\n" in page


def test_settings_page_is_current() -> None:
    # Regenerate with: python -m snakemake_executor_awsbatch.ops.settingsdoc docs/settings.md
    assert main([str(PAGE), "--check"]) == 0
