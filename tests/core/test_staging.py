"""S3 staging against moto: parallel transfers, checksums set and verified, directories,
secondary files, optional outputs, KMS and storage class arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from snakemake_executor_awsbatch.checksums import file_checksum
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.staging import (
    META_KEY,
    S3Stager,
    StagingError,
    StagingSettings,
    default_concurrency,
    parse_s3_uri,
    tuning_from_env,
)
from snakemake_executor_awsbatch.taskspec import StagedFile

SMALL = StagingSettings(chunk_mib=5, threshold_mib=5, range_mib=5, max_concurrency=8)


def _write(path: Path, size: int, seed: int = 1) -> bytes:
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    data = bytes((b + seed) % 256 for b in data[:4096]) + data[4096:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://my-bucket/a/b.txt") == ("my-bucket", "a/b.txt")
    assert parse_s3_uri("s3://my-bucket") == ("my-bucket", "")
    with pytest.raises(UserError, match="not an S3 URI"):
        parse_s3_uri("/local/path")
    with pytest.raises(UserError, match="invalid S3 bucket"):
        parse_s3_uri("s3://Bad_Bucket/key")


@pytest.mark.parametrize("algorithm", ["CRC32C", "SHA256", "CRC32"])
def test_round_trip_sets_and_verifies_checksums(
    s3: Any, bucket: str, tmp_path: Path, algorithm: str
) -> None:
    big = _write(tmp_path / "up" / "big.bin", 12 * (1 << 20))  # multipart with 5 MiB parts
    small = _write(tmp_path / "up" / "small.txt", 100, seed=7)
    settings = StagingSettings(
        chunk_mib=5, threshold_mib=5, range_mib=5, checksum_algorithm=algorithm
    )
    with S3Stager(s3, settings) as stager:
        up = stager.upload_files(
            [
                (str(tmp_path / "up" / "big.bin"), f"s3://{bucket}/x/big.bin"),
                (str(tmp_path / "up" / "small.txt"), f"s3://{bucket}/x/small.txt"),
            ]
        )
        assert (up.files, up.bytes) == (2, len(big) + len(small))
        head = s3.head_object(Bucket=bucket, Key="x/big.bin")
        expected = file_checksum(str(tmp_path / "up" / "big.bin"), algorithm)
        assert head["Metadata"][META_KEY] == f"{algorithm}:{expected}"
        down = stager.download_files(
            [
                (f"s3://{bucket}/x/big.bin", str(tmp_path / "down" / "big.bin")),
                (f"s3://{bucket}/x/small.txt", str(tmp_path / "down" / "small.txt")),
            ]
        )
    assert (down.files, down.bytes, down.unverified) == (2, len(big) + len(small), 0)
    assert (tmp_path / "down" / "big.bin").read_bytes() == big
    assert (tmp_path / "down" / "small.txt").read_bytes() == small


def test_corrupted_object_is_detected_and_removed(s3: Any, bucket: str, tmp_path: Path) -> None:
    _write(tmp_path / "a.bin", 1000)
    with S3Stager(s3, SMALL) as stager:
        stager.upload_files([(str(tmp_path / "a.bin"), f"s3://{bucket}/a.bin")])
        meta = s3.head_object(Bucket=bucket, Key="a.bin")["Metadata"]
        # Same metadata, different bytes: what a corrupted or tampered object looks like.
        s3.put_object(Bucket=bucket, Key="a.bin", Body=b"x" * 1000, Metadata=meta)
        with pytest.raises(StagingError, match="arrived corrupted"):
            stager.download_files([(f"s3://{bucket}/a.bin", str(tmp_path / "b.bin"))])
    assert not (tmp_path / "b.bin").exists()


def test_object_written_by_others_counts_as_unverified(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"hello")
    with S3Stager(s3, SMALL) as stager:
        stats = stager.download_files([(f"s3://{bucket}/plain.txt", str(tmp_path / "p.txt"))])
    assert (tmp_path / "p.txt").read_bytes() == b"hello"
    # botocore adds a CRC32 to plain puts by default; without it the download is unverified.
    head = s3.head_object(Bucket=bucket, Key="plain.txt", ChecksumMode="ENABLED")
    assert stats.unverified == (0 if head.get("ChecksumCRC32") else 1)


def test_missing_input_names_the_uri(s3: Any, bucket: str, tmp_path: Path) -> None:
    with (
        S3Stager(s3, SMALL) as stager,
        pytest.raises(StagingError, match=f"s3://{bucket}/nope.txt does not exist"),
    ):
        stager.download_files([(f"s3://{bucket}/nope.txt", str(tmp_path / "n"))])


def test_directories_and_secondary_files(s3: Any, bucket: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    for i in range(30):
        _write(work / "outdir" / f"sub{i % 3}" / f"f{i}.txt", 10 + i, seed=i)
    _write(work / "x.bam", 2000)
    _write(work / "x.bam.bai", 50)
    outputs = (
        StagedFile(s3_uri=f"s3://{bucket}/o/outdir", path="outdir", is_directory=True),
        StagedFile(
            s3_uri=f"s3://{bucket}/o/x.bam",
            path="x.bam",
            secondary=((f"s3://{bucket}/o/x.bam.bai", "x.bam.bai"),),
        ),
        StagedFile(s3_uri=f"s3://{bucket}/o/absent.txt", path="absent.txt", optional=True),
    )
    with S3Stager(s3, SMALL) as stager:
        out = stager.stage_out(outputs, str(work))
        assert out.files == 32
        inputs = tuple(
            StagedFile(
                s3_uri=o.s3_uri, path=o.path, is_directory=o.is_directory, secondary=o.secondary
            )
            for o in outputs[:2]
        )
        back = tmp_path / "back"
        got = stager.stage_in(inputs, str(back))
    assert got.files == 32 and got.unverified == 0
    for i in range(30):
        rel = Path("outdir") / f"sub{i % 3}" / f"f{i}.txt"
        assert (back / rel).read_bytes() == (work / rel).read_bytes()
    assert (back / "x.bam.bai").read_bytes() == (work / "x.bam.bai").read_bytes()


def test_empty_directories_survive_the_round_trip(s3: Any, bucket: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _write(tree / "a" / "f.txt", 5)
    (tree / "a" / "empty").mkdir()
    (tree / "b" / "c").mkdir(parents=True)  # an empty chain: only the deepest needs a marker
    uri = f"s3://{bucket}/dirs/tree"
    with S3Stager(s3, SMALL) as stager:
        up = stager.upload_directory(str(tree), uri)
        back = tmp_path / "back"
        down = stager.download_directory(uri, str(back))
    assert (up.files, down.files) == (1, 1)  # markers are not counted as files
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dirs/")["Contents"])
    assert keys == ["dirs/tree/a/empty/", "dirs/tree/a/f.txt", "dirs/tree/b/c/"]
    assert (back / "a" / "empty").is_dir() and (back / "b" / "c").is_dir()
    assert (back / "a" / "f.txt").read_bytes() == (tree / "a" / "f.txt").read_bytes()


def test_missing_required_output_and_glob(s3: Any, bucket: str, tmp_path: Path) -> None:
    _write(tmp_path / "a.vcf", 10)
    _write(tmp_path / "b.vcf", 20)
    with S3Stager(s3, SMALL) as stager:
        with pytest.raises(StagingError, match=r"output result\.txt was not created"):
            stager.stage_out(
                (StagedFile(s3_uri=f"s3://{bucket}/r", path="result.txt"),), str(tmp_path)
            )
        stats = stager.stage_out(
            (StagedFile(s3_uri=f"s3://{bucket}/g", path="*.vcf"),), str(tmp_path)
        )
    assert stats.files == 2
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="g/")["Contents"])
    assert keys == ["g/a.vcf", "g/b.vcf"]


def test_kms_key_and_storage_class_reach_the_request(s3: Any, bucket: str, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    s3.meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: seen.append(dict(params))
    )
    kms = boto3_kms_key()
    _write(tmp_path / "k.txt", 10)
    settings = StagingSettings(sse_kms_key_id=kms, storage_class="INTELLIGENT_TIERING")
    with S3Stager(s3, settings) as stager:
        stager.upload_files([(str(tmp_path / "k.txt"), f"s3://{bucket}/k.txt")])
    assert seen[0]["SSEKMSKeyId"] == kms
    assert seen[0]["ServerSideEncryption"] == "aws:kms"
    assert seen[0]["StorageClass"] == "INTELLIGENT_TIERING"
    assert seen[0]["ChecksumAlgorithm"] == "CRC32C"


def boto3_kms_key() -> str:
    """A KMS key id that exists in the mocked account."""
    import boto3

    return str(boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"])


def test_unknown_checksum_algorithm_is_a_user_error(s3: Any) -> None:
    with pytest.raises(UserError, match="not supported"):
        S3Stager(s3, StagingSettings(checksum_algorithm="MD5"))


def test_file_checksum_matches_known_values(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    # RFC 3720 / zlib / FIPS 180-2 reference digests of b"abc", base64 of big-endian bytes.
    assert file_checksum(str(path), "CRC32C") == "Nks/tw=="
    assert file_checksum(str(path), "CRC32") == "NSRBwg=="
    assert file_checksum(str(path), "SHA256") == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    assert os.path.getsize(path) == 3


def test_tuning_from_the_environment() -> None:
    assert tuning_from_env({"AWSBATCH_S3_CHUNK_MIB": "64", "AWSBATCH_S3_CONCURRENCY": "8"}) == {
        "chunk_mib": 64,
        "max_concurrency": 8,
    }
    assert tuning_from_env({"AWSBATCH_S3_RANGE_MIB": "8"}) == {"range_mib": 8}
    with pytest.raises(UserError, match="not a positive whole number"):
        tuning_from_env({"AWSBATCH_S3_RANGE_MIB": "0"})
    assert tuning_from_env({}) == {}
    with pytest.raises(UserError, match="not a positive whole number"):
        tuning_from_env({"AWSBATCH_S3_CONCURRENCY": "many"})
    with pytest.raises(UserError, match="5 MiB part minimum"):
        tuning_from_env({"AWSBATCH_S3_CHUNK_MIB": "1"})


def test_default_concurrency_is_four_per_cpu_between_8_and_32() -> None:
    assert [default_concurrency(n) for n in (1, 2, 3, 4, 8, 64)] == [8, 8, 12, 16, 32, 32]
    assert StagingSettings().max_concurrency == default_concurrency()
    assert StagingSettings(max_concurrency=5).max_concurrency == 5
