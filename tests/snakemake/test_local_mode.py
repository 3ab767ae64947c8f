"""`copy_outputs`: a local-cloud run's outputs come back into the working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from snakemake_executor_awsbatch import local_mode

BUCKET = "outputs-test"


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    """A moto S3 client with one bucket."""
    moto_s3.create_bucket(Bucket=BUCKET)
    return moto_s3


def test_small_and_large_objects_are_copied_byte_for_byte(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Down to 1 KiB, so that the large-object path (download_file, in parts) runs too.
    monkeypatch.setattr(local_mode, "SINGLE_GET_BYTES", 1024)
    objects = {
        "results/s/s.vcf.gz": bytes(range(256)) * 40,  # 10 KiB: the large path
        "logs/a.log": b"small\n",
        "qc/s/empty.txt": b"",
    }
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=f"runs/{key}", Body=body)
    written = local_mode.copy_outputs(f"s3://{BUCKET}/runs", tmp_path, s3=s3)
    assert sorted(written) == sorted(tmp_path / key for key in objects)
    for key, body in objects.items():
        assert (tmp_path / key).read_bytes() == body


def test_machinery_folder_markers_and_escaping_keys_are_not_copied(s3: Any, tmp_path: Path) -> None:
    keys = [
        "runs/.awsbatch/job/report.json",
        "runs/.snakemake/metadata/x",
        "runs/snakemake-workflow-sources.abc.tar.xz",
        "runs/dir/",
        "runs/../escape.txt",
        "runs/kept.txt",
    ]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    work = tmp_path / "work"
    work.mkdir()
    assert local_mode.copy_outputs(f"s3://{BUCKET}/runs/", work, s3=s3) == [work / "kept.txt"]
    assert not (tmp_path / "escape.txt").exists()


def test_activating_the_local_cloud_freezes_the_objects_made_so_far() -> None:
    # In a child interpreter: freezing would keep this test process's objects out of the
    # collector for the rest of the suite.
    probe = (
        "import gc, sys\n"
        "from snakemake_executor_awsbatch import local_mode\n"
        "before = gc.get_freeze_count()\n"
        "local_mode.activate()\n"
        "frozen = gc.get_freeze_count()\n"
        "local_mode.deactivate()\n"
        "print(before, frozen)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    before, frozen = map(int, done.stdout.split())
    # Everything imported for the cloud (moto, botocore, werkzeug) is now out of full collections.
    assert before == 0 and frozen > 10_000
