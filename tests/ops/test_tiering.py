"""`awsbatch tier`: objects get the tag the template's lifecycle rules select on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from moto import mock_aws

from snakemake_executor_awsbatch.cli import main
from snakemake_executor_awsbatch.ops.tiering import TAG_KEY, data_type

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"


def test_data_types_by_extension() -> None:
    assert data_type("run/sample_R1.fastq.gz") == "fastq"
    assert data_type("run/s.FQ") == "fastq"
    assert data_type("run/s.markdup.bam") == "alignment"
    assert data_type("run/s.cram.crai") == "alignment"
    assert data_type("run/calls.vcf.gz.tbi") == "variants"
    assert data_type("run/calls.bcf") == "variants"
    assert data_type("run/qc.html") is None


def test_tag_values_match_the_template_rules() -> None:
    rules = cfn_yaml.loads(TEMPLATE.read_text())["Resources"]["DataBucket"]["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    selected = {f["Value"] for r in rules for f in r.get("TagFilters", []) if f["Key"] == TAG_KEY}
    assert selected == {data_type("a.fastq.gz"), data_type("a.bam")}


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto bucket with a few result files, one already carrying another tag."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SNAKEMAKE_AWSBATCH_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tier-bucket")
        for key in ("r/a_R1.fastq.gz", "r/a.bam", "r/a.vcf.gz", "r/report.html"):
            client.put_object(Bucket="tier-bucket", Key=key, Body=b"x")
        client.put_object_tagging(
            Bucket="tier-bucket",
            Key="r/a.bam",
            Tagging={"TagSet": [{"Key": "project", "Value": "p1"}]},
        )
        yield client


def _tags(s3: Any, key: str) -> dict[str, str]:
    tags = s3.get_object_tagging(Bucket="tier-bucket", Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tags}


def test_tier_command_tags_and_is_idempotent(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tier", "s3://tier-bucket/r/", "--dry-run", "--region", "us-east-1"]) == 0
    assert _tags(s3, "r/a_R1.fastq.gz") == {}
    assert main(["tier", "s3://tier-bucket/r/", "--region", "us-east-1"]) == 0
    assert _tags(s3, "r/a_R1.fastq.gz") == {TAG_KEY: "fastq"}
    assert _tags(s3, "r/a.bam") == {"project": "p1", TAG_KEY: "alignment"}
    assert _tags(s3, "r/a.vcf.gz") == {TAG_KEY: "variants"}
    assert _tags(s3, "r/report.html") == {}
    capsys.readouterr()
    assert main(["tier", "s3://tier-bucket/r/", "--region", "us-east-1"]) == 0
    assert (
        capsys.readouterr().out.strip().endswith("tagged nothing; 3 already tagged, 1 other files")
    )
