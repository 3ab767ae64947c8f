"""The runner's schema-salad fetcher: s3:// and efs:// are data locations, never documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from schema_salad.exceptions import ValidationException

from cwl_runner.fetcher import StorageFetcher


def test_s3_and_efs_are_known_schemes_and_exist_until_staging_says_otherwise() -> None:
    fetcher = StorageFetcher({}, None)
    assert {"s3", "efs", "file", "http", "https"} <= set(fetcher.supported_schemes())
    assert fetcher.check_exists("efs://fs-12345678/refs/ce.fa")
    assert fetcher.check_exists("s3://bucket/reads/r1.fq.gz")


@pytest.mark.parametrize("url", ["s3://bucket/wf.cwl", "efs://fs-12345678/wf.cwl"])
def test_a_document_in_s3_or_on_efs_is_refused_with_the_fix(url: str) -> None:
    with pytest.raises(ValidationException, match="copy it to a local path"):
        StorageFetcher({}, None).fetch_text(url)


def test_local_documents_load_as_before(tmp_path: Path) -> None:
    doc = tmp_path / "tool.cwl"
    doc.write_text("cwlVersion: v1.2\n")
    fetcher = StorageFetcher({}, None)
    assert fetcher.fetch_text(doc.as_uri()) == "cwlVersion: v1.2\n"
    assert fetcher.check_exists(doc.as_uri())
    assert not fetcher.check_exists((tmp_path / "missing.cwl").as_uri())
