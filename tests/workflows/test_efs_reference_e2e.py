"""docs/efs-references.md's worked example through Python: publish C. elegans chrI with its
indexes to the local cloud's EFS (`awsbatch refs publish`), upload a sample's reads to S3, run the
germline workflow with the file system mounted at /ref, and check that no job staged the
reference and that the planted variants are found."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from wf_helpers import REPO

from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.ops.refs import EfsTarget, PublishRequest, publish
from snakemake_executor_awsbatch.submitter import BatchSubmitter
from workflows.demo import LOCAL_STATUS_INTERVAL_SECONDS, executor_available, snakemake_env
from workflows.tools.compare import compare_vcfs
from workflows.tools.sim_genome import find_default_reference

BUCKET = "efs-example"
PREFIX = f"s3://{BUCKET}/runs/run1"
IMAGE = "localcloud/host:latest"
# Rules whose commands read the reference; with it on EFS none of them may stage it.
REFERENCE_RULES = ("split_regions", "bwa_mem", "call_bcftools", "call_freebayes", "final_calls")


def _s3(cloud: LocalCloud) -> Any:
    return boto3.client("s3", endpoint_url=cloud.endpoint_url, region_name=cloud.region)


def _task_files(s3: Any, name: str) -> dict[str, dict[str, Any]]:
    """Every task's `name` object (spec.json, report.json) under the run's .awsbatch prefix,
    keyed by the task directory (`<rule>-<jobid>-<hash>`)."""
    found: dict[str, dict[str, Any]] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="runs/run1/")
    for page in pages:
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            if ".awsbatch" in parts and parts[-1] == name:
                body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
                found[parts[-2]] = json.loads(body)
    return found


@pytest.mark.e2e
def test_germline_reads_the_reference_from_efs_and_stages_none_of_it(
    local_cloud: LocalCloud, sim_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert executor_available(), "Snakemake cannot load the awsbatch executor plugin"
    # boto3 here, as the shell's `export` lines do for a user: the cloud's endpoint and keys.
    for key, value in local_cloud.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = _s3(local_cloud)
    s3.create_bucket(Bucket=BUCKET)
    fs_id = local_cloud.efs_file_system_id

    # 1. The whole 1 Mbp chrI (the reads come from its first 40 kbp): far larger than any
    # job's own inputs, so a staged reference would show in the bytes the jobs moved.
    fasta = tmp_path / "ref" / "ce.fa"
    fasta.parent.mkdir()
    shutil.copy(find_default_reference(), fasta)
    record = publish(
        PublishRequest(
            source=fasta,
            target=EfsTarget.parse(f"{fs_id}:/refs/ce"),
            staging=f"s3://{BUCKET}/refs-staging",
            queue=local_cloud.queue_name,
            image=IMAGE,
            build=True,
        ),
        s3,
        BatchSubmitter.create(region=local_cloud.region, endpoint_url=local_cloud.endpoint_url),
        say=lambda _: None,
        poll_seconds=0.5,
    )
    assert record["action"] == "published"
    published = local_cloud.efs_root(fs_id) / "refs" / "ce"
    assert {p.name for p in published.iterdir()} >= {"ce.fa", "ce.fa.fai", "ce.fa.bwt", "ce.dict"}
    reference_bytes = int(record["bytes"])

    # 2. Reads in S3, named by s3:// URIs in the samples rows, as a user on AWS would keep them.
    for mate in (1, 2):
        key = f"reads/normal_R{mate}.fastq.gz"
        s3.upload_file(str(sim_dir / key), BUCKET, key)
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(
        REPO / "workflows" / "germline",
        workdir / "germline",
        ignore=shutil.ignore_patterns("__pycache__", "cwl"),
    )
    config = {
        "reference": "/ref/ce.fa",
        "reference_indexed": True,
        "scatter": 1,
        "samples": {
            "normal": {
                "fq1": f"s3://{BUCKET}/reads/normal_R1.fastq.gz",
                "fq2": f"s3://{BUCKET}/reads/normal_R2.fastq.gz",
            }
        },
    }
    (workdir / "config.yaml").write_text(json.dumps(config))

    # 3. The germline workflow against the running cloud, the EFS directory mounted at /ref.
    env = snakemake_env()
    argv = [sys.executable, "-m", "snakemake", "-s", "germline/Snakefile"]
    argv += ["--configfile", "config.yaml", "--executor", "awsbatch", "-j", "4"]
    argv += ["--awsbatch-endpoint-url", local_cloud.endpoint_url]
    argv += ["--awsbatch-queue", local_cloud.queue_name, "--awsbatch-image", IMAGE]
    argv += ["--awsbatch-efs", f"{fs_id}:/refs/ce:/ref"]
    argv += ["--default-storage-provider", "s3", "--default-storage-prefix", PREFIX]
    argv += ["--seconds-between-status-checks", str(LOCAL_STATUS_INTERVAL_SECONDS)]
    done = subprocess.run(
        argv, cwd=workdir, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    specs, reports = _task_files(s3, "spec.json"), _task_files(s3, "report.json")
    assert specs and set(reports) == set(specs)
    # A group job's name joins its group's and its rules' names (align_bam_qc_bwa_mem).
    rules_of = {task: {r for r in REFERENCE_RULES if r in task.split("-")[0]} for task in specs}
    readers = [task for task, rules in rules_of.items() if rules]
    assert set().union(*rules_of.values()) == set(REFERENCE_RULES)
    for task in readers:
        spec = specs[task]
        staged = [item["s3_uri"] for item in spec["staging"]["inputs"]]
        assert not [uri for uri in staged if "/ce." in uri or "reference" in uri], (task, staged)
        assert "/ref/ce.fa" in spec["shell"], task
    # No job, the reference readers or the others, moved as many bytes as the reference.
    assert all(report["status"] == "succeeded" for report in reports.values())
    assert max(report["bytes_in"] for report in reports.values()) < reference_bytes / 2

    vcf = tmp_path / "normal.vcf.gz"
    s3.download_file(BUCKET, "runs/run1/results/normal/normal.vcf.gz", str(vcf))
    acc = compare_vcfs(sim_dir / "truth/germline.vcf.gz", vcf, fasta)
    snv, indel = acc["snv"], acc["indel"]
    assert isinstance(snv, dict) and isinstance(indel, dict)
    assert snv["tp"] >= 20 and snv["recall"] >= 0.95 and snv["precision"] >= 0.95
    assert indel["recall"] >= 0.75 and indel["precision"] >= 0.75


def test_an_object_uri_cannot_be_a_mounted_reference(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        json.dumps(
            {
                "reference": "s3://bucket/ce.fa",
                "reference_indexed": True,
                "samples": {"s1": {"fq1": "s3://bucket/r1.fq.gz", "fq2": "s3://bucket/r2.fq.gz"}},
            }
        )
    )
    argv = [sys.executable, "-m", "snakemake", "-n", "-s"]
    argv += [str(REPO / "workflows" / "germline" / "Snakefile"), "-d", str(tmp_path)]
    argv += ["--configfile", str(tmp_path / "config.yaml")]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=snakemake_env())
    assert done.returncode != 0
    assert "reference_indexed is true, which needs a path every job can read" in (
        done.stdout + done.stderr
    )
