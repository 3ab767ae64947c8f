"""`awsbatch refs publish|list`: put a reference genome and its indexes on EFS, once per content.

The submitting machine needs no EFS mount: files go to S3 under `<staging>/refs/<digest>/`, and a
Batch job that mounts the file system read-write copies them to the target directory, verifies
their SHA-256 sums and swaps the directory in with a rename, so readers never see half a reference.
The digest is a SHA-256 over every file's name and content. A record at
`<staging>/refs/published/<fs-id>/<path>.json` remembers what each target holds, so a second
publish of the same data submits nothing; the job itself also skips the copy when the target's
marker already names the digest (a lost record costs one short job, never a wrong reference).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.s3uri import join_s3_uri, parse_s3_uri
from snakemake_executor_awsbatch.taskspec import (
    EfsMount,
    LaunchSpec,
    StagedFile,
    StagingManifest,
    TaskSpec,
)

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
INDEX_SUFFIXES = (".fai", ".gzi", ".amb", ".ann", ".bwt", ".pac", ".sa", ".0123", ".bwt.2bit.64")
MARKER = ".awsbatch-ref.json"
SUMS = "SHA256SUMS"
MOUNT_POINT = "/mnt/awsbatch-refs"
_FS_ID = re.compile(r"^fs-[0-9a-f]{8,40}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class EfsTarget:
    """Where a reference goes: a directory of an EFS file system (or of its access point)."""

    file_system_id: str
    path: str
    access_point_id: str | None = None

    @classmethod
    def parse(cls, text: str, access_point_id: str | None = None) -> EfsTarget:
        """`fs-0123abcd:/refs/grch38` -> target; the path must be absolute and not the root."""
        fs_id, sep, path = text.partition(":")
        if not sep or not _FS_ID.match(fs_id):
            raise UserError(
                f"--efs {text!r} is not fs-id:/path; write it like "
                "fs-0123456789abcdef0:/refs/grch38."
            )
        norm = posixpath.normpath(path)
        parts = [p for p in norm.split("/") if p]
        if not norm.startswith("/") or not parts or any(not _NAME.match(p) for p in parts):
            raise UserError(
                f"--efs path {path!r} must be an absolute directory below / made of letters, "
                "digits, '.', '_' and '-'; e.g. /refs/grch38."
            )
        return cls(fs_id, norm, access_point_id)

    @property
    def record_key(self) -> str:
        """The record's name below `<staging>/refs/published/`."""
        return f"{self.file_system_id}{self.path}.json"


def fasta_stem(path: Path) -> str:
    """'GRCh38.p14.fa.gz' -> 'GRCh38.p14' (where samtools and Picard put the .dict)."""
    for suffix in FASTA_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def reference_files(path: Path) -> list[Path]:
    """A FASTA and the index files next to it, or every file of a directory."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MARKER)
        if not files:
            raise UserError(f"Directory {path} is empty: pass a FASTA file or a reference bundle.")
        return files
    if not path.is_file():
        raise UserError(f"Reference {path} does not exist: pass a FASTA file or a directory.")
    if not path.name.endswith(FASTA_SUFFIXES):
        raise UserError(
            f"{path} does not look like a FASTA ({', '.join(FASTA_SUFFIXES)}): pass the FASTA "
            "itself or a directory."
        )
    found = [path]
    found += [Path(f"{path}{s}") for s in INDEX_SUFFIXES if Path(f"{path}{s}").is_file()]
    for dictionary in (path.with_name(f"{fasta_stem(path)}.dict"), Path(f"{path}.dict")):
        if dictionary.is_file() and dictionary not in found:
            found.append(dictionary)
    return found


def missing_indexes(fasta: Path, files: Sequence[Path]) -> list[str]:
    """Which of faidx, dict and bwa indexes are absent for a FASTA."""
    names = {f.name for f in files}
    missing = []
    if f"{fasta.name}.fai" not in names:
        missing.append("faidx")
    if not any(n.endswith(".dict") for n in names):
        missing.append("dict")
    if not all(f"{fasta.name}{s}" in names for s in (".amb", ".ann", ".bwt", ".pac", ".sa")):
        missing.append("bwa")
    return missing


def build_indexes(fasta: Path, which: Sequence[str]) -> None:
    """Create the missing indexes next to the FASTA (pysam for faidx/dict, `bwa index`)."""
    import pysam

    if "faidx" in which:
        pysam.faidx(str(fasta))
    if "dict" in which:
        pysam.samtools.dict("-o", str(fasta.with_name(f"{fasta_stem(fasta)}.dict")), str(fasta))
    if "bwa" in which:
        if shutil.which("bwa") is None:
            raise UserError(
                "bwa is not installed: install it (Debian: bwa) or drop --build-indexes."
            )
        subprocess.run(["bwa", "index", str(fasta)], check=True, capture_output=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """The files to publish, their names in the target directory, sums and content digest."""

    files: tuple[tuple[Path, str, str, int], ...]  # (local path, name, sha256, size)
    digest: str

    @classmethod
    def of(cls, root: Path, files: Sequence[Path]) -> Bundle:
        """Hash every file; names are relative to a directory, or the file names."""
        base = root if root.is_dir() else root.parent
        rows = tuple(
            (f, f.relative_to(base).as_posix(), _sha256(f), f.stat().st_size) for f in files
        )
        outer = hashlib.sha256()
        for _, name, sha, _ in sorted(rows, key=lambda r: r[1]):
            outer.update(f"{name}\0{sha}\n".encode())
        return cls(rows, outer.hexdigest())

    def sums_text(self) -> str:
        """`sha256sum -c` input."""
        return "".join(f"{sha}  {name}\n" for _, name, sha, _ in self.files)

    @property
    def size(self) -> int:
        """Total bytes."""
        return sum(size for *_, size in self.files)


def copy_script(target: EfsTarget, bundle: Bundle) -> str:
    """The job's shell: verify, copy to a temporary sibling, write the marker, swap in."""
    dest = shlex.quote(f"{MOUNT_POINT}{target.path}")
    marker = json.dumps({"digest": bundle.digest, "files": len(bundle.files)})
    names = " ".join(shlex.quote(name) for _, name, _, _ in bundle.files)
    return f"""set -euo pipefail
dest={dest}
if grep -qs '"digest": "{bundle.digest}"' "$dest/{MARKER}"; then
  echo "reference already at $dest ({bundle.digest[:12]})"; exit 0
fi
sha256sum -c --quiet {SUMS}
tmp="$dest.tmp-{bundle.digest[:12]}-$$"
rm -rf "$tmp" && mkdir -p "$tmp"
tar -cf - {names} {SUMS} | tar -xf - -C "$tmp"
(cd "$tmp" && sha256sum -c --quiet {SUMS})
printf '%s\\n' {shlex.quote(marker)} > "$tmp/{MARKER}"
chmod -R a+rX "$tmp"
if [ -e "$dest" ]; then mv "$dest" "$dest.old-$$"; fi
mv "$tmp" "$dest"
rm -rf "$dest.old-$$"
echo "published {len(bundle.files)} file(s) to $dest"
"""


@dataclass(frozen=True)
class PublishRequest:
    """Everything `publish` needs besides the clients."""

    source: Path
    target: EfsTarget
    staging: str
    queue: str
    image: str
    job_role_arn: str | None = None
    build: bool = False
    timeout_seconds: float = 3600.0


def _no_bucket(exc: ClientError, bucket: str) -> UserError | None:
    """A UserError naming the fix when `exc` says the staging bucket does not exist."""
    if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
        return None
    return UserError(
        f"S3 bucket {bucket} (from --staging) does not exist: create it "
        f"(aws s3 mb s3://{bucket}) or pass an existing bucket's prefix as --staging."
    )


def _get_record(s3: Any, uri: str) -> dict[str, Any] | None:
    bucket, key = parse_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        missing = _no_bucket(exc, bucket)
        if missing:
            raise missing from None
        raise
    loaded = json.loads(body)
    return loaded if isinstance(loaded, dict) else None


def publish(
    request: PublishRequest,
    s3: Any,
    submitter: Any,
    say: Callable[[str], None] = print,
    poll_seconds: float = 2.0,
) -> dict[str, Any]:
    """Publish a reference; returns its record (`"action"`: "published" or "unchanged")."""
    files = reference_files(request.source)
    if request.source.is_file():
        missing = missing_indexes(request.source, files)
        if missing and request.build:
            say(f"building {', '.join(missing)} index(es) for {request.source}")
            build_indexes(request.source, missing)
            files = reference_files(request.source)
        elif missing:
            say(
                f"note: no {', '.join(missing)} index(es) next to {request.source} "
                "(pass --build-indexes to create them)"
            )
    bundle = Bundle.of(request.source, files)
    record_uri = join_s3_uri(request.staging, "refs", "published", request.target.record_key)
    record = _get_record(s3, record_uri)
    if record and record.get("digest") == bundle.digest:
        say(
            f"{request.target.file_system_id}:{request.target.path} already holds "
            f"{bundle.digest[:12]}; nothing to do"
        )
        return {**record, "action": "unchanged"}
    data_uri = join_s3_uri(request.staging, "refs", bundle.digest)
    _upload(s3, bundle, data_uri)
    spec = _task_spec(request, bundle, data_uri)
    submitter.preflight([spec])
    job_id = submitter.submit(spec)
    say(f"submitted copy job {job_id} ({len(bundle.files)} file(s), {bundle.size} bytes)")
    state = _wait(submitter, job_id, request.timeout_seconds, poll_seconds)
    if state.status != "SUCCEEDED":
        raise UserError(f"Publishing failed: {state.explain()}")
    new_record = {
        "digest": bundle.digest,
        "file_system_id": request.target.file_system_id,
        "path": request.target.path,
        "access_point_id": request.target.access_point_id,
        "files": [{"name": n, "sha256": h, "size": s} for _, n, h, s in bundle.files],
        "bytes": bundle.size,
        "job_id": job_id,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    bucket, key = parse_s3_uri(record_uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(new_record, indent=1).encode())
    say(f"published {bundle.digest[:12]} to {request.target.file_system_id}:{request.target.path}")
    return {**new_record, "action": "published"}


def _upload(s3: Any, bundle: Bundle, data_uri: str) -> None:
    bucket, prefix = parse_s3_uri(data_uri)
    for path, name, _, size in bundle.files:
        key = f"{prefix}/{name}"
        try:
            if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == size:
                continue  # content-addressed prefix: same name and size is the same upload
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise
        s3.upload_file(str(path), bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{SUMS}", Body=bundle.sums_text().encode())


def _task_spec(request: PublishRequest, bundle: Bundle, data_uri: str) -> TaskSpec:
    target = request.target
    names = [name for _, name, _, _ in bundle.files] + [SUMS]
    inputs = tuple(StagedFile(s3_uri=f"{data_uri}/{name}", path=name) for name in names)
    launch = LaunchSpec(
        staging=StagingManifest(
            prefix=join_s3_uri(data_uri, "jobs", uuid.uuid4().hex[:12]), inputs=inputs
        ),
        shell=copy_script(target, bundle),
    )
    mount = EfsMount(
        file_system_id=target.file_system_id,
        container_path=MOUNT_POINT,
        read_only=False,
        access_point_id=target.access_point_id,
        iam_auth=bool(target.access_point_id and request.job_role_arn),
    )
    return TaskSpec(
        name=f"refs-publish-{target.path.strip('/').replace('/', '-')}"[:128],
        image=request.image,
        launch=launch,
        queue=request.queue,
        vcpus=1.0,
        memory_mib=2048,
        mounts=(mount,),
        job_role_arn=request.job_role_arn,
        tags={"awsbatch-refs": bundle.digest[:12]},
    )


def _wait(submitter: Any, job_id: str, timeout: float, poll_seconds: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        state = submitter.poll([job_id])[job_id]
        if state.is_finished:
            return state
        if time.monotonic() > deadline:
            raise UserError(
                f"Copy job {job_id} did not finish within {timeout:.0f}s: check it with "
                "`aws batch describe-jobs` and raise --timeout."
            )
        time.sleep(poll_seconds)


def list_published(
    s3: Any, staging: str, file_system_id: str | None = None
) -> list[dict[str, Any]]:
    """Every publish record under `<staging>/refs/published/` (one file system when given)."""
    base = join_s3_uri(staging, "refs", "published", file_system_id or "")
    bucket, prefix = parse_s3_uri(base.rstrip("/") + "/")
    records = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    try:
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    except ClientError as exc:
        missing = _no_bucket(exc, bucket)
        if missing:
            raise missing from None
        raise
    for key in keys:
        if key.endswith(".json"):
            record = _get_record(s3, f"s3://{bucket}/{key}")
            if record:
                records.append(record)
    return sorted(records, key=lambda r: (r.get("file_system_id", ""), r.get("path", "")))


def render_list(records: Sequence[dict[str, Any]]) -> str:
    """A table of published references."""
    lines = [f"{'FILE SYSTEM':22} {'PATH':28} {'DIGEST':12} {'FILES':>5} {'BYTES':>12}  PUBLISHED"]
    for r in records:
        lines.append(
            f"{r.get('file_system_id', ''):22} {r.get('path', ''):28} "
            f"{str(r.get('digest', ''))[:12]:12} {len(r.get('files', [])):>5} "
            f"{r.get('bytes', 0):>12}  {r.get('published_at', '')}"
        )
    if not records:
        lines.append("(no references published under this staging prefix)")
    return "\n".join(lines)
