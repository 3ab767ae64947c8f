"""Reference bundles: which files, their digest, target parsing, and the copy job's spec."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ops.refs import (
    Bundle,
    EfsTarget,
    PublishRequest,
    build_indexes,
    copy_script,
    fasta_stem,
    list_published,
    missing_indexes,
    publish,
    reference_files,
)

FASTA = ">chr1\nACGTACGTACGTNNNNACGT\n>chr2\nGGGGCCCCAAAATTTT\n"


def test_target_parsing_and_errors() -> None:
    target = EfsTarget.parse("fs-0123abcd:/refs/grch38/")
    assert (target.file_system_id, target.path) == ("fs-0123abcd", "/refs/grch38")
    assert target.record_key == "fs-0123abcd/refs/grch38.json"
    for bad in ("refs/grch38", "fs-0123abcd", "fs-0123abcd:/", "fs-0123abcd:/a b", "efs:/x"):
        with pytest.raises(UserError):
            EfsTarget.parse(bad)


def test_indexes_are_built_and_found_next_to_a_dotted_fasta(tmp_path: Path) -> None:
    fasta = tmp_path / "GRCh38.p14.fa"
    fasta.write_text(FASTA)
    assert fasta_stem(fasta) == "GRCh38.p14"
    assert missing_indexes(fasta, reference_files(fasta)) == ["faidx", "dict", "bwa"]
    build_indexes(fasta, ["faidx", "dict", "bwa"])
    files = reference_files(fasta)
    assert missing_indexes(fasta, files) == []
    assert {f.name for f in files} >= {"GRCh38.p14.fa.fai", "GRCh38.p14.dict", "GRCh38.p14.fa.bwt"}


def test_digest_depends_on_content_and_names_only(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
        (root / "ref.fa").write_text(FASTA)
        (root / "ref.fa.fai").write_text("chr1\t20\t6\t20\t21\n")
    first = Bundle.of(one, reference_files(one))
    assert Bundle.of(two, reference_files(two)).digest == first.digest
    (two / "ref.fa").write_text(FASTA.replace("GGGG", "GGGA"))
    assert Bundle.of(two, reference_files(two)).digest != first.digest
    assert first.sums_text().count("\n") == 2


def test_copy_script_swaps_in_atomically_and_skips_same_digest(tmp_path: Path) -> None:
    (tmp_path / "ref.fa").write_text(FASTA)
    bundle = Bundle.of(tmp_path / "ref.fa", reference_files(tmp_path / "ref.fa"))
    script = copy_script(EfsTarget.parse("fs-0123abcd:/refs/x"), bundle)
    assert f'grep -qs \'"digest": "{bundle.digest}"\'' in script
    assert "sha256sum -c --quiet SHA256SUMS" in script
    assert script.index('mv "$tmp" "$dest"') > script.index('> "$tmp/.awsbatch-ref.json"')


def test_missing_or_unknown_source_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        reference_files(tmp_path / "nope.fa")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="FASTA"):
        reference_files(tmp_path / "notes.txt")


class _NoSubmit:
    """A submitter that fails the test if publishing gets as far as a job."""

    def preflight(self, specs: object) -> None:
        raise AssertionError("preflight reached with a missing staging bucket")

    def submit(self, spec: object) -> str:
        raise AssertionError("a job was submitted with a missing staging bucket")


def test_missing_staging_bucket_is_a_user_error_before_any_job(tmp_path: Path) -> None:
    (tmp_path / "ref.fa").write_text(FASTA)
    request = PublishRequest(
        source=tmp_path / "ref.fa",
        target=EfsTarget.parse("fs-0123abcd:/refs/x"),
        staging="s3://no-such-bucket/staging",
        queue="q",
        image="img",
    )
    with mock_aws():
        s3 = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        s3.create_bucket(Bucket="other-bucket")
        with pytest.raises(UserError, match=r"no-such-bucket .*does not exist: create it"):
            publish(request, s3, _NoSubmit(), say=lambda _: None)
        with pytest.raises(UserError, match=r"no-such-bucket .*does not exist"):
            list_published(s3, "s3://no-such-bucket/staging")
        assert list_published(s3, "s3://other-bucket/staging") == []
