"""Saving moto's S3 contents of one account to the state dir, and loading them back.

Kept simple on purpose: on a clean stop, each bucket's latest object versions are written under
`<state>/s3/<bucket>/` (a `manifest.json` plus one data file per object), replacing the previous
snapshot atomically; on start they are put back into moto. Bucket configuration (versioning,
policies, lifecycle) and old object versions are not kept.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

_KEY_FIELDS = (
    "_storage_class",
    "encryption",
    "kms_key_id",
    "checksum_algorithm",
    "checksum_value",
    "checksum_type",
)


def _backend(account_id: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id]["aws"]


def save(account_id: str, root: Path) -> int:
    """Write every bucket of `account_id` under `root`; returns the number of objects saved."""
    backend = _backend(account_id)
    fresh = root.with_name(root.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    count = 0
    for bucket in list(backend.buckets.values()):
        bucket_dir = fresh / bucket.name
        (bucket_dir / "objects").mkdir(parents=True)
        manifest: dict[str, Any] = {"region": bucket.region_name, "objects": []}
        for index, key in enumerate(list(bucket.keys.values())):
            if key is None or getattr(key, "is_delete_marker", False):
                continue
            data_name = f"{index:08d}"
            (bucket_dir / "objects" / data_name).write_bytes(key.value)
            entry = {
                "key": key.name,
                "file": data_name,
                "etag": key.etag.strip('"'),
                "metadata": dict(key.metadata),
                "fields": {f: getattr(key, f, None) for f in _KEY_FIELDS},
            }
            manifest["objects"].append(entry)
            count += 1
        (bucket_dir / "manifest.json").write_text(json.dumps(manifest))
    old = root.with_name(root.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        os.replace(root, old)
    os.replace(fresh, root)
    shutil.rmtree(old, ignore_errors=True)
    return count


def load(account_id: str, root: Path) -> int:
    """Put a saved snapshot back into moto; returns the number of objects loaded."""
    if not root.is_dir():
        return 0
    backend = _backend(account_id)
    count = 0
    for bucket_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        manifest = json.loads((bucket_dir / "manifest.json").read_text())
        if bucket_dir.name not in backend.buckets:
            backend.create_bucket(bucket_dir.name, manifest["region"])
        for entry in manifest["objects"]:
            value = (bucket_dir / "objects" / entry["file"]).read_bytes()
            key = backend.put_object(
                bucket_dir.name, entry["key"], value, etag=entry["etag"], disable_notification=True
            )
            key.set_metadata(dict(entry["metadata"]))
            for field, stored in entry["fields"].items():
                if stored is not None:
                    setattr(key, field, stored)
            count += 1
    return count


def forget(account_id: str) -> None:
    """Drop the account's buckets from moto, freeing their names in moto's global namespace."""
    from moto.s3.models import s3_backends

    backend = _backend(account_id)
    for name in list(backend.buckets):
        s3_backends.bucket_accounts.pop(name, None)
        bucket = backend.buckets.pop(name)
        for key in list(bucket.keys.values()):
            if hasattr(key, "dispose"):
                key.dispose()
