"""End to end on the local cloud: one workflow with wildcards, a checkpoint, script: and run:
rules, temp files, a directory output, a rule that is killed for memory on attempt 1 and passes
with more on attempt 2, and a reference read through an EFS mount. Its outputs must be
byte-identical to a plain local `snakemake -c2` run of the same Snakefile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from smk_helpers import batch_args, run_snakemake, tree

from snakemake_executor_awsbatch.local_mode import copy_outputs
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.secrets import SECRET_NAME

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).parent / "workflows" / "e2e"
REFERENCE = b">chrI\nACGTACGTAC\n>chrII\nGGGCCC\n>chrIII\nTTTT\n"


def test_workflow_matches_a_local_run(local_cloud: LocalCloud, tmp_path: Path) -> None:
    efs_dir = local_cloud.efs_root(local_cloud.efs_file_system_id)
    (efs_dir / "genome.fa").write_bytes(REFERENCE)
    prefix = "s3://smk-e2e/run"

    batch_dir = tmp_path / "batch"
    shutil.copytree(WORKFLOW, batch_dir)
    args = batch_args(
        local_cloud,
        prefix,
        "--awsbatch-efs",
        f"{local_cloud.efs_file_system_id}:/ref",
        "--awsbatch-min-memory-mib",
        "256",
        "--retries",
        "1",
        "-j",
        "4",
    )
    result = run_snakemake(batch_dir, args, local_cloud)
    assert result.returncode == 0, result.stdout[-6000:]

    s3 = boto3.client("s3", **_client_kwargs(local_cloud))
    copy_outputs(prefix, batch_dir, s3=s3)

    local_dir = tmp_path / "local"
    shutil.copytree(WORKFLOW, local_dir)
    (tmp_path / "genome.fa").write_bytes(REFERENCE)
    local = run_snakemake(local_dir, ["-c2", "--config", f"ref={tmp_path / 'genome.fa'}"], None)
    assert local.returncode == 0, local.stdout[-4000:]

    on_batch, at_home = tree(batch_dir), tree(local_dir)
    assert sorted(on_batch) == sorted(at_home)
    for name, content in at_home.items():
        assert on_batch[name] == content, name
    assert on_batch["results/ref_stats.txt"] == b"3\n" + str(len(REFERENCE)).encode() + b"\n"
    assert "tmp/a.upper" not in on_batch  # temp() outputs were removed from storage

    # attempt 1 of `hungry` was killed for memory, attempt 2 passed with more
    assert "ran out of memory" in result.stdout
    saved = list((batch_dir / ".snakemake" / "awsbatch_logs").glob("smk-hungry-*.log"))
    assert len(saved) == 1

    # nothing that looks like a credential travelled in any job's spec
    keys = _keys(s3, "smk-e2e", "run/.awsbatch/")
    specs = [k for k in keys if k.endswith("spec.json")]
    assert len(specs) >= 10
    for key in specs:
        spec = json.loads(s3.get_object(Bucket="smk-e2e", Key=key)["Body"].read())
        assert not [name for name in spec["env"] if SECRET_NAME.search(name)], key
        assert local_cloud.client_env()["AWS_SECRET_ACCESS_KEY"] not in json.dumps(spec["env"])


def _client_kwargs(cloud: LocalCloud) -> dict[str, str]:
    env = cloud.client_env()
    return {
        "endpoint_url": cloud.endpoint_url,
        "region_name": cloud.region,
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def _keys(s3: object, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    return [str(item["Key"]) for page in pages for item in page.get("Contents", [])]
