"""boto3 sessions that share one loader of botocore's JSON data.

Each new session parses the service models and endpoint rules it needs again: 60-90 ms for an
S3 client, about 0.12-0.2 s for the executor's Batch, S3 and Logs clients together. Every
session made here shares one loader instead. In the Snakemake process that loader is the one of
boto3's default session when that exists: Snakemake's S3 storage plugin builds its client there
before the executor starts, so the S3 model is parsed once for both. A warm launcher
interpreter (warm_interpreter, on the local cloud) fills the loader before its job arrives.
(boto3 adds its resource path to the loader once per session: an entry per client, a handful
per process.)
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session

_model_loader: Any = None
_model_loader_lock = threading.Lock()


def shared_session(region: str | None = None) -> boto3.session.Session:
    """A new boto3 session (own credentials and region) on the process's shared model loader."""
    global _model_loader
    core = botocore.session.Session()
    with _model_loader_lock:
        if _model_loader is None:
            default = boto3.DEFAULT_SESSION
            _model_loader = (
                default._session.get_component("data_loader")
                if default is not None
                else core.get_component("data_loader")
            )
        core.register_component("data_loader", _model_loader)
    return boto3.session.Session(botocore_session=core, region_name=region)
