"""moto's region lists read from the process's shared botocore loader, not a loader of its own.

moto makes an account's backend for a service on its first use, under one lock that every moto
request of every service takes (`moto.core.base_backend.backend_lock`, even to look a backend
up). Making the backend lists the service's regions through a botocore session moto keeps for
itself (`AccountSpecificBackend.get_session`), whose loader parses the endpoint files and the
service's model again although this process has parsed them already for its own clients: 0.05-0.15
s for Logs. The first Batch job creates the Logs backend (its log stream), so that parse held the
lock exactly when the run's busiest S3 moment came (Snakemake uploading a local job's outputs): a
3 MB upload waited 0.13-0.15 s for it in traced runs, and the job's own start waited too.

Pointing that session at the shared loader (`botosession.shared_session`) makes the same lookup
take 0.1 ms (8 ms when the service's model is not loaded yet). The data is botocore's either way
(moto's own model extras go through a different loader, which is left alone).
"""

from __future__ import annotations

import functools
from typing import Any

from snakemake_executor_awsbatch.botosession import shared_session


@functools.cache
def _moto_regions_session() -> Any:
    return shared_session()


def share_loader_with_moto() -> None:
    """Have moto list regions through the shared loader (idempotent)."""
    from moto.core.base_backend import AccountSpecificBackend

    # The session is made at moto's first use, so that a storage plugin's default boto3 session,
    # made after the cloud starts, is the one whose loader is shared (see botosession).
    AccountSpecificBackend.get_session = classmethod(  # type: ignore[method-assign,assignment]
        lambda cls: _moto_regions_session()
    )
