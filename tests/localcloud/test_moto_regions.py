"""The local cloud has moto list a service's regions through the process's shared botocore loader,
so that moto's first use of a service (made under its global lock) parses no endpoint data."""

from __future__ import annotations

import random

from snakemake_executor_awsbatch.botosession import shared_session
from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud


def test_moto_lists_regions_through_the_shared_loader(local_cloud: LocalCloud) -> None:
    from moto.core.base_backend import AccountSpecificBackend
    from moto.logs.models import logs_backends

    shared_loader = shared_session()._session.get_component("data_loader")
    moto_session = AccountSpecificBackend.get_session()
    assert moto_session._session.get_component("data_loader") is shared_loader
    # A backend made now, for an account moto has not seen, still knows the service's regions.
    backend = logs_backends[str(random.randrange(10**11, 10**12))]
    assert {"us-east-1", "eu-west-1"} <= set(backend.regions)
