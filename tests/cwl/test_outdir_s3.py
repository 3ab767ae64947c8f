"""`--outdir s3://bucket/prefix`: final outputs are copied server-side under the prefix, the
output object has `s3://` locations, and a bad S3 outdir is one error before any submission."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from snakemake_executor_awsbatch.localcloud import LocalCloud

from .s3_helpers import SHAPES, local_env, run_cwl, s3_calls, write_job, write_workflow

pytestmark = pytest.mark.e2e
__all__ = ["local_env", "s3_calls"]  # fixtures used by this module's tests


@pytest.fixture
def results_bucket(local_env: LocalCloud) -> Any:
    s3 = boto3.client("s3", endpoint_url=local_env.endpoint_url, region_name=local_env.region)
    if "cwl-results" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="cwl-results")
    return s3


def test_final_outputs_are_copied_server_side(
    results_bucket: Any, tmp_path: Path, s3_calls: list[tuple[str, dict[str, Any]]]
) -> None:
    workflow = write_workflow(tmp_path)
    dest = "s3://cwl-results/runs/two-steps"
    code, result, err, rec = run_cwl(["--outdir", dest, str(workflow), write_job(tmp_path, 5)])
    assert code == 0, err
    assert result["count"]["location"] == f"{dest}/count.txt"
    body = results_bucket.get_object(Bucket="cwl-results", Key="runs/two-steps/count.txt")
    assert body["Body"].read().strip() == b"5"
    source_key = rec.submitted[1].launch.staging.prefix.split("/", 3)[3] + "/outdir/count.txt"
    copies = [p for op, p in s3_calls if op == "CopyObject"]
    assert [c["CopySource"]["Key"] for c in copies] == [source_key]
    runner_gets = [p["Key"] for op, p in s3_calls if op == "GetObject"]
    assert source_key not in runner_gets
    # No local copy: nothing was written under the working directory's "s3:" path.
    assert not Path("s3:").exists()


def test_directories_and_secondary_files_to_s3(results_bucket: Any, tmp_path: Path) -> None:
    (tmp_path / "shapes.cwl").write_text(SHAPES)
    dest = "s3://cwl-results/shapes"
    code, result, err, _ = run_cwl(["--outdir", dest, str(tmp_path / "shapes.cwl")])
    assert code == 0, err
    keys = {
        o["Key"]
        for o in results_bucket.list_objects_v2(Bucket="cwl-results", Prefix="shapes/")["Contents"]
    }
    assert {"shapes/a.txt", "shapes/b.dat", "shapes/b.dat.idx", "shapes/d/x"} <= keys
    # Empty directories survive as directory markers.
    assert {"shapes/d/empty/", "shapes/e/"} <= keys
    assert result["b"]["secondaryFiles"][0]["location"] == f"{dest}/b.dat.idx"
    listing = {e["basename"]: e["location"] for e in result["d"]["listing"]}
    assert listing == {"empty": f"{dest}/d/empty", "x": f"{dest}/d/x"}
    assert result["a"]["checksum"] == "sha1$aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"


@pytest.mark.parametrize(
    ("outdir", "message"),
    [
        ("s3://no-such-results-bucket/x", "create bucket no-such-results-bucket"),
        ("s3:///x", "names no bucket"),
    ],
)
def test_bad_s3_outdir_is_one_error_before_submission(
    local_env: LocalCloud, tmp_path: Path, outdir: str, message: str
) -> None:
    workflow = write_workflow(tmp_path)
    code, _, err, rec = run_cwl(["--outdir", outdir, str(workflow), write_job(tmp_path, 2)])
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err
    assert rec.submitted == []
