"""The workflow's final outputs: the only files that leave S3.

With a local `--outdir`, every `s3://` File or Directory of the final output object is downloaded
into a scratch directory of the run, and cwltool's own relocation then moves it into `--outdir`
(names, conflicts and checksums as cwltool does them). With `--outdir s3://bucket/prefix`, each
output is copied server-side under the prefix and the output object keeps `s3://` locations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from botocore.exceptions import ClientError
from cwltool.process import compute_checksums
from cwltool.stdfsaccess import StdFsAccess
from cwltool.utils import get_listing, visit_class
from schema_salad.ref_resolver import file_uri, uri_file_path

from snakemake_executor_awsbatch import dirmarkers
from snakemake_executor_awsbatch.errors import UserError

from .fsaccess import is_s3, s3_key_uri, s3_location
from .s3store import S3Store, parse_s3_uri

_Visit = Callable[[Any, Any, Any], None]


def download_outputs(output: Any, store: S3Store, scratch: str) -> int:
    """Replace every `s3://` File/Directory in `output` by a local copy under `scratch`;
    return how many objects were downloaded."""
    done: dict[str, str] = {}
    count = 0

    def fetch(obj: MutableMapping[str, Any]) -> None:
        nonlocal count
        location = str(obj.get("location", ""))
        if not is_s3(location):
            return
        if location not in done:
            target = os.path.join(scratch, str(len(done)), str(obj["basename"]))
            raw = s3_key_uri(location)
            if obj["class"] == "Directory":
                count += store.download_tree(raw, target)
            else:
                store.download_file(raw, target)
                count += 1
            done[location] = target
        obj["location"] = file_uri(done[location])
        # cwltool lists the local copy again, with local locations.
        obj.pop("listing", None)

    visit: _Visit = visit_class
    visit(output, ("File", "Directory"), fetch)
    return count


def check_s3_outdir(store: S3Store, uri: str) -> None:
    """Refuse an `--outdir s3://...` that names no bucket or that these credentials cannot
    write, by writing its directory marker (the empty output directory, as the console does)."""
    bucket, key = parse_s3_uri(uri)
    try:
        if key.strip("/"):
            store.put_marker(uri.rstrip("/"))
        else:
            store.client.head_bucket(Bucket=bucket)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", "error"))
        raise UserError(
            f"--outdir {uri} cannot be written ({code}); create bucket {bucket} or grant "
            "s3:PutObject on the prefix to these credentials."
        ) from err


def _top_level(obj: Any) -> Iterator[MutableMapping[str, Any]]:
    if isinstance(obj, MutableMapping):
        if obj.get("class") in ("File", "Directory"):
            yield obj
        else:
            for value in obj.values():
                yield from _top_level(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _top_level(value)


class S3Delivery:
    """Copies final outputs under an S3 prefix: server-side for S3 sources, uploads for the
    (rare) local ones, such as an input passed through or an expression's file literal."""

    def __init__(self, store: S3Store, dest: str, fs_access: StdFsAccess) -> None:
        """Deliver under the prefix `dest` (a raw `s3://bucket/prefix`)."""
        self.store = store
        self.dest = dest.rstrip("/")
        self.fs_access = fs_access
        self._taken: dict[str, str] = {}
        self.copied = 0
        self.uploaded = 0

    def deliver(self, output: Any, checksum: bool) -> None:
        """Copy every File/Directory of `output` and point its locations at the copies."""
        for obj in _top_level(output):
            self._deliver(obj, self.dest)
        if checksum:

            def fill(obj: MutableMapping[str, Any]) -> None:
                compute_checksums(self.fs_access, obj)  # type: ignore[arg-type]

            visit: _Visit = visit_class
            visit(output, ("File",), fill)

    def _target(self, parent: str, obj: MutableMapping[str, Any]) -> str:
        """`parent/basename`, renamed `basename_2`, `_3`... on a clash, as cwltool does."""
        target = f"{parent}/{obj['basename']}"
        source = str(obj.get("location"))
        if self._taken.get(target, source) != source:
            i = 2
            while self._taken.get(f"{target}_{i}", source) != source:
                i += 1
            target = f"{target}_{i}"
        self._taken[target] = source
        return target

    def _deliver(self, obj: MutableMapping[str, Any], parent: str) -> None:
        target = self._target(parent, obj)
        location = str(obj.get("location", ""))
        if obj["class"] == "Directory":
            self._directory(obj, location, target)
        else:
            self._file(obj, location, target)
            for sec in obj.get("secondaryFiles", []):
                self._deliver(sec, parent)
        obj["location"] = s3_location(target)

    def _file(self, obj: MutableMapping[str, Any], location: str, target: str) -> None:
        if is_s3(location):
            self.store.copy(s3_key_uri(location), target)
            self.copied += 1
            return
        bucket, key = parse_s3_uri(target)
        if location.startswith("_:"):
            body = str(obj.get("contents", "")).encode("utf-8")
            self.store.client.put_object(Bucket=bucket, Key=key, Body=body)
        else:
            self.store.client.upload_file(uri_file_path(location), bucket, key)
        self.uploaded += 1

    def _directory(self, obj: MutableMapping[str, Any], location: str, target: str) -> None:
        if is_s3(location):
            raw = s3_key_uri(location).rstrip("/")
            for entry in self.store.list_tree(raw):
                self.store.copy(entry.uri, target + entry.uri[len(raw) :])
                self.copied += 1
            if not self.store.is_prefix(target):
                self.store.put_marker(target)
        elif location.startswith("file:"):
            local = uri_file_path(location)
            for root, _dirs, files in os.walk(local):
                for name in files:
                    path = os.path.join(root, name)
                    rel = os.path.relpath(path, local).replace(os.sep, "/")
                    bucket, key = parse_s3_uri(f"{target}/{rel}")
                    self.store.client.upload_file(path, bucket, key)
                    self.uploaded += 1
            dirmarkers.upload_markers(self.store.client, local, target)
        else:
            # A literal directory (`_:`): its listing says what it holds.
            self.store.put_marker(target)
            for child in obj.get("listing", []):
                self._deliver(child, target)
        obj.pop("listing", None)
        obj["location"] = s3_location(target)
        get_listing(self.fs_access, obj, recursive=True)
