"""The launcher features direct shell jobs rely on: source archives unpacked (and verified) before
the payload, and the payload's log files pushed also when it fails. moto S3 in process."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

from snakemake_executor_awsbatch.jobstate import EXIT_STAGE_IN_FAILED
from snakemake_executor_awsbatch.launcher import launch
from snakemake_executor_awsbatch.taskspec import (
    LaunchSpec,
    SourceArchive,
    StagedFile,
    StagingManifest,
)


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _run(s3: Any, bucket: str, spec: LaunchSpec) -> tuple[int, dict[str, Any]]:
    s3.put_object(Bucket=bucket, Key="t/spec.json", Body=spec.to_json().encode())
    code = launch(spec.staging.spec_uri, client=s3)
    report = json.loads(s3.get_object(Bucket=bucket, Key="t/report.json")["Body"].read())
    return code, report


def test_source_archive_is_unpacked_before_the_payload(s3: Any, bucket: str) -> None:
    archive = _tar_xz({"scripts/greet.sh": b"echo hello from the sources\n"})
    s3.put_object(Bucket=bucket, Key="src.tar.xz", Body=archive)
    spec = LaunchSpec(
        staging=StagingManifest(
            prefix=f"s3://{bucket}/t",
            outputs=(StagedFile(s3_uri=f"s3://{bucket}/out.txt", path="out.txt"),),
        ),
        shell="bash scripts/greet.sh > out.txt; test ! -e .awsbatch-archive-0.tar",
        archives=(SourceArchive(f"s3://{bucket}/src.tar.xz", hashlib.sha256(archive).hexdigest()),),
    )
    code, report = _run(s3, bucket, spec)
    assert code == 0, report
    body = s3.get_object(Bucket=bucket, Key="out.txt")["Body"].read()
    assert body == b"hello from the sources\n"
    assert report["bytes_in"] == len(archive)


def test_archive_with_a_wrong_digest_fails_stage_in(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src.tar.xz", Body=_tar_xz({"a": b"1"}))
    spec = LaunchSpec(
        staging=StagingManifest(prefix=f"s3://{bucket}/t"),
        shell="true",
        archives=(SourceArchive(f"s3://{bucket}/src.tar.xz", "0" * 64),),
    )
    code, report = _run(s3, bucket, spec)
    assert code == EXIT_STAGE_IN_FAILED
    assert "SHA-256" in report["error"] and "restart the run" in report["error"]


def test_archive_escaping_the_workdir_is_refused(s3: Any, bucket: str) -> None:
    archive = _tar_xz({"../escape.txt": b"x"})
    s3.put_object(Bucket=bucket, Key="src.tar.xz", Body=archive)
    spec = LaunchSpec(
        staging=StagingManifest(prefix=f"s3://{bucket}/t"),
        shell="true",
        archives=(SourceArchive(f"s3://{bucket}/src.tar.xz", hashlib.sha256(archive).hexdigest()),),
    )
    code, report = _run(s3, bucket, spec)
    assert code == EXIT_STAGE_IN_FAILED
    assert "cannot unpack source archive" in report["error"]


def test_log_files_are_pushed_when_the_payload_fails(s3: Any, bucket: str) -> None:
    spec = LaunchSpec(
        staging=StagingManifest(
            prefix=f"s3://{bucket}/t",
            outputs=(StagedFile(s3_uri=f"s3://{bucket}/never.txt", path="never.txt"),),
            logs=(
                StagedFile(s3_uri=f"s3://{bucket}/logs/a.log", path="logs/a.log", optional=True),
                StagedFile(s3_uri=f"s3://{bucket}/logs/b.log", path="logs/b.log", optional=True),
            ),
        ),
        shell="mkdir -p logs; echo 'bwa: index missing' > logs/a.log; exit 4",
    )
    code, report = _run(s3, bucket, spec)
    assert code == 4 and report["status"] == "payload_failed"
    assert s3.get_object(Bucket=bucket, Key="logs/a.log")["Body"].read() == b"bwa: index missing\n"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="logs/").get("Contents", [])
    assert [o["Key"] for o in listed] == ["logs/a.log"]  # the absent optional log is no error
    assert s3.list_objects_v2(Bucket=bucket, Prefix="never").get("KeyCount") == 0
