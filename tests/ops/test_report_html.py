"""The HTML report opened in headless Chromium draws its timeline (a screenshot is not blank).

Needs Debian's chromium (packaging/apt-packages-dev.txt, installed by `scripts/setup.sh --dev`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from snakemake_executor_awsbatch.ops.report_html import FAILED_COLOUR, PALETTE, render_html
from snakemake_executor_awsbatch.ops.runload import load_run

from .png import count_colour, decode_png
from .runfixture import RUN, describe, write_run


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _screenshot(html: Path, png: Path, profile: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "install Debian's chromium: scripts/setup.sh --dev"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1200,900",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_report_renders_timeline_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        write_run(s3)
        report = load_run(s3, RUN, describe)
    html = tmp_path / "report.html"
    html.write_text(render_html(report))
    png = tmp_path / "report.png"
    _screenshot(html, png, tmp_path / "profile")
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1200, 900)
    non_white = sum(
        1 for row in rows for i in range(0, len(row), 3) if row[i : i + 3] != b"\xff" * 3
    )
    assert non_white > 20_000
    # The timeline sits in the top third: the first rule's bars and the failed attempts (red)
    # must both be drawn there, each at least a few thousand pixels (bars are ~14 px high).
    top = rows[: height // 3]
    assert count_colour(top, _rgb(PALETTE[0])) > 3_000
    assert count_colour(top, _rgb(FAILED_COLOUR)) > 3_000
