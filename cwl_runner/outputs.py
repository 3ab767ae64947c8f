"""A step's outputs stay in S3: what the job records about its output directory, and how the
controller completes cwltool's output objects without downloading them.

After the payload, the job's script lists the empty directories of its output directory and the
SHA-1 of every file (cwltool's `checksum`) in a small manifest beside the output directory. The
controller writes a directory marker for each empty directory (so S3 listings show them; the
core's upload may have done so already) and fills `checksum`/`size` from the manifest and
HeadObject, instead of reading the files back.
"""

from __future__ import annotations

import shlex
import urllib.parse
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from cwltool.process import compute_checksums
from cwltool.stdfsaccess import StdFsAccess
from cwltool.utils import visit_class

from snakemake_executor_awsbatch import dirmarkers

from .s3store import S3Store

MANIFEST_FILE = ".cwl-awsbatch-outdir-manifest"
_SEPARATOR = "---"


def manifest_script(outdir: str, manifest_path: str, checksums: bool) -> list[str]:
    """Shell lines that describe `outdir` into `manifest_path` (errors ignored: a missing
    manifest only makes the controller do the work itself)."""
    lines = [
        f"cd {shlex.quote(outdir)} && {{",
        "  find . -type d -empty",
        f"  echo {_SEPARATOR}",
    ]
    if checksums:
        lines.append("  find -L . -type f -exec sha1sum {} +")
    lines.append(f"}} > {shlex.quote(manifest_path)} 2>/dev/null")
    return lines


@dataclass(frozen=True)
class OutdirManifest:
    """Empty directories (relative, "" for the output directory) and SHA-1 per relative file."""

    empty_dirs: tuple[str, ...] = ()
    sha1: Mapping[str, str] = field(default_factory=dict)


def parse_manifest(text: str) -> OutdirManifest:
    """Read what `manifest_script` wrote."""
    dirs: list[str] = []
    sums: dict[str, str] = {}
    in_dirs = True
    for line in text.splitlines():
        if line == _SEPARATOR:
            in_dirs = False
        elif in_dirs and (line == "." or line.startswith("./")):
            dirs.append(line[2:])
        elif not in_dirs and len(line) > 44 and line[40:44] == "  ./":
            # sha1sum escapes odd names with a leading backslash; those are hashed here instead.
            sums[line[44:]] = line[:40]
    return OutdirManifest(tuple(dirs), sums)


def finalise_outdir(store: S3Store, outdir_uri: str, manifest_uri: str) -> OutdirManifest:
    """Read the job's manifest and mark the empty directories of its output directory in S3."""
    manifest = OutdirManifest(empty_dirs=("",))
    if store.exists_object(manifest_uri):
        manifest = parse_manifest(store.read_bytes(manifest_uri).decode("utf-8", "replace"))
    # A manifest with no empty directory means files were uploaded, so the prefix exists.
    dirmarkers.put_markers(store.client, outdir_uri, manifest.empty_dirs)
    return manifest


def complete_files(
    outputs: MutableMapping[str, Any],
    outdir_location: str,
    manifest: OutdirManifest,
    fs_access: StdFsAccess,
    checksum: bool,
) -> None:
    """Give every File its `size` and (when asked) `checksum`, from the manifest where the file
    is in this job's output directory, else by reading it as cwltool would."""
    base = outdir_location.rstrip("/") + "/"

    def complete(obj: MutableMapping[str, Any]) -> None:
        location = str(obj.get("location", ""))
        if location.startswith("_:"):
            return
        known = None
        if location.startswith(base):
            known = manifest.sha1.get(urllib.parse.unquote(location[len(base) :]))
        if checksum and "checksum" not in obj and known is not None:
            obj["checksum"] = f"sha1${known}"
        if "size" not in obj:
            obj["size"] = fs_access.size(location)
        if checksum and "checksum" not in obj:
            compute_checksums(fs_access, obj)  # type: ignore[arg-type]

    visit: Callable[[Any, Any, Any], None] = visit_class
    visit(outputs, ("File",), complete)


def alias_locations(outputs: MutableMapping[str, Any], pairs: list[tuple[str, str]]) -> None:
    """Rewrite locations equal to or under each `old` of (old, new) to be under `new`."""

    def rewrite(obj: MutableMapping[str, Any]) -> None:
        location = str(obj.get("location", ""))
        for old, new in pairs:
            if location == old or location.startswith(old.rstrip("/") + "/"):
                obj["location"] = new + location[len(old) :]
                return

    if pairs:
        visit: Callable[[Any, Any, Any], None] = visit_class
        visit(outputs, ("File", "Directory"), rewrite)
