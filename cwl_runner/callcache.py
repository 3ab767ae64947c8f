"""A call cache in S3: an unchanged step (same command, image, resources, input content) is not
re-run; its earlier output directory in S3 is reused instead.

The key is a SHA-256 over the job's launch script, environment, image and resources, with every
run-specific path (outdir, tmpdir, staging targets) replaced by a stable name for its content, so
that the same step in a later run, with its fresh temporary paths, gets the same key.
"""

from __future__ import annotations

import hashlib
import json

from snakemake_executor_awsbatch.taskspec import TaskSpec

from .fsaccess import is_s3
from .s3store import S3Store, parse_s3_uri


class CallCache:
    """Looks up and records finished steps under `<root>/callcache/<key>.json`."""

    def __init__(self, store: S3Store, root_uri: str) -> None:
        """Keep entries under `root_uri`."""
        self.store = store
        self.root_uri = root_uri.rstrip("/")

    def key_for(self, spec: TaskSpec) -> str:
        """A content key for `spec` that does not depend on this run's temporary paths."""
        launch = spec.launch
        replacements: list[tuple[str, str]] = []
        for staged in launch.staging.inputs:
            replacements.append((staged.path, f"@input[{self._content_id(staged.s3_uri)}]"))
        for out in launch.staging.outputs:
            replacements.append((out.path, "@outdir"))
        workdir = launch.workdir or ""
        tmpdir = launch.env.get("TMPDIR", "")
        replacements.extend([(workdir, "@outdir"), (tmpdir, "@tmpdir")])
        # Longest first, so a staging target inside the outdir wins over the outdir itself.
        replacements = sorted((r for r in replacements if r[0]), key=lambda r: -len(r[0]))

        def normalise(text: str | None) -> str | None:
            if text is None:
                return None
            for old, new in replacements:
                text = text.replace(old, new)
            return text

        material = {
            "script": normalise(launch.shell),
            "command": [normalise(a) for a in launch.command],
            "env": {k: normalise(v) for k, v in sorted(launch.env.items())},
            "stdin": normalise(launch.stdin),
            "stdout": launch.stdout,
            "stderr": launch.stderr,
            "success_codes": list(launch.success_codes),
            "inputs": sorted(
                (_placed(s.path, workdir), self._content_id(s.s3_uri), s.is_directory)
                for s in launch.staging.inputs
            ),
            "image": spec.image,
            "vcpus": spec.vcpus,
            "memory_mib": spec.memory_mib,
            "gpus": spec.gpus,
            "mounts": sorted(repr(m) for m in spec.mounts),
        }
        blob = json.dumps(material, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def _content_id(self, uri: str) -> str:
        """Our own uploads are content-addressed already; other S3 data is named by ETag."""
        if uri.startswith(self.root_uri + "/cas/") or uri.startswith(self.root_uri + "/dirs/"):
            return uri[len(self.root_uri) :]
        if is_s3(uri) and self.store.exists_object(uri):
            bucket, key = parse_s3_uri(uri)
            head = self.store.client.head_object(Bucket=bucket, Key=key)
            return f"{uri}@{head.get('ETag', '')}"
        listing = sorted((e.uri, e.size) for e in self.store.list_tree(uri))
        return f"{uri}@{hashlib.sha256(repr(listing).encode()).hexdigest()}"

    def _entry_uri(self, key: str) -> str:
        return f"{self.root_uri}/callcache/{key}.json"

    def lookup(self, key: str) -> str | None:
        """The S3 output directory recorded for `key`, or None."""
        entry = self._entry_uri(key)
        if not self.store.exists_object(entry):
            return None
        record = json.loads(self.store.read_bytes(entry))
        outdir = record.get("outdir")
        return str(outdir) if outdir else None

    def record(self, key: str, outdir_uri: str) -> None:
        """Record that `key` produced `outdir_uri`."""
        bucket, obj = parse_s3_uri(self._entry_uri(key))
        body = json.dumps({"outdir": outdir_uri}).encode("utf-8")
        self.store.client.put_object(Bucket=bucket, Key=obj, Body=body)


def _placed(path: str, workdir: str) -> str:
    """Where an input lands, without run-specific paths: its place inside the working directory
    (InitialWorkDir entry names change what the tool sees, so two steps that differ only in
    them must not share a key), else just its name (staging directories are per run)."""
    base = workdir.rstrip("/") + "/"
    if workdir and path.startswith(base):
        return "@outdir/" + path[len(base) :]
    return "@stage/" + path.rstrip("/").rsplit("/", 1)[-1]
