"""`awsbatch tier <s3 prefix>`: tag objects with their genomics data type for lifecycle tiering.

S3 lifecycle rules cannot match file extensions, so the template's rules select objects by the
tag `genomics-data-type` (fastq, alignment, variants). This command sets that tag from each key's
extension, keeping any other tags the object has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snakemake_executor_awsbatch.s3uri import parse_s3_uri

TAG_KEY = "genomics-data-type"
_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fastq", (".fastq", ".fq", ".fastq.gz", ".fq.gz", ".fastq.bz2", ".fq.bz2", ".ora")),
    ("alignment", (".bam", ".bai", ".cram", ".crai", ".sam", ".sam.gz", ".csi")),
    ("variants", (".vcf", ".vcf.gz", ".vcf.gz.tbi", ".bcf", ".bcf.csi", ".gvcf.gz", ".g.vcf.gz")),
)


def data_type(key: str) -> str | None:
    """The tag value for an object key, or None for other files."""
    lower = key.lower()
    # Index suffixes such as .vcf.gz.tbi must be checked before shorter ones.
    best: tuple[int, str] | None = None
    for value, suffixes in _TYPES:
        for suffix in suffixes:
            if lower.endswith(suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), value)
    return best[1] if best else None


@dataclass(frozen=True)
class TierResult:
    """What a tagging pass did."""

    tagged: dict[str, int]
    unchanged: int
    skipped: int


def tag_prefix(
    s3: Any, uri: str, dry_run: bool = False, say: Callable[[str], None] = print
) -> TierResult:
    """Tag every object under `uri` with its data type (objects of other types are skipped)."""
    bucket, prefix = parse_s3_uri(uri)
    tagged: dict[str, int] = {}
    unchanged = skipped = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            value = data_type(key)
            if value is None:
                skipped += 1
                continue
            tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
            if {"Key": TAG_KEY, "Value": value} in tags:
                unchanged += 1
                continue
            if not dry_run:
                kept = [t for t in tags if t["Key"] != TAG_KEY]
                s3.put_object_tagging(
                    Bucket=bucket,
                    Key=key,
                    Tagging={"TagSet": [*kept, {"Key": TAG_KEY, "Value": value}]},
                )
            tagged[value] = tagged.get(value, 0) + 1
            say(f"{'would tag' if dry_run else 'tagged'} s3://{bucket}/{key} {TAG_KEY}={value}")
    return TierResult(tagged, unchanged, skipped)
