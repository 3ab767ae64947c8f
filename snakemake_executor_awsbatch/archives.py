"""Unpacking source archives (Snakemake's workflow sources) into a job's working directory.

A Snakemake job run directly (see `direct_shell.py`) still needs the workflow's files that its
command names, such as a helper script beside the Snakefile; Snakemake ships them as one
`tar.xz` in the storage prefix. The launcher fetches it with the same stager as the inputs,
checks its SHA-256 (the digest is part of the object's name, so a mismatch means corruption),
and unpacks it with tarfile's `data` filter, which refuses absolute paths, `..` and devices.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Sequence
from typing import Protocol

from snakemake_executor_awsbatch.staging import StagingError, TransferStats
from snakemake_executor_awsbatch.taskspec import SourceArchive, StagedFile


class _Stager(Protocol):
    def stage_in(self, files: Sequence[StagedFile], workdir: str) -> TransferStats: ...


def unpack_archives(
    stager: _Stager, archives: Sequence[SourceArchive], workdir: str
) -> TransferStats:
    """Fetch, verify and unpack each archive into `workdir`; returns what was downloaded."""
    stats = TransferStats()
    for number, archive in enumerate(archives):
        local = os.path.join(workdir, f".awsbatch-archive-{number}.tar")
        stats += stager.stage_in((StagedFile(s3_uri=archive.s3_uri, path=local),), workdir)
        try:
            digest = _sha256(local)
            if digest != archive.sha256:
                raise StagingError(
                    f"source archive {archive.s3_uri} has SHA-256 {digest}, expected "
                    f"{archive.sha256}; it was changed after the run started, so restart the run."
                )
            with tarfile.open(local) as tar:
                tar.extractall(workdir, filter="data")
        except (tarfile.TarError, OSError) as error:
            raise StagingError(f"cannot unpack source archive {archive.s3_uri}: {error}") from None
        finally:
            if os.path.exists(local):
                os.unlink(local)
    return stats


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
