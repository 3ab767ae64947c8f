"""Shared fixtures: a local cloud per test module, and a factory for clouds with custom settings.

The module-wide cloud is sized generously (16 vCPUs, 32 GiB) and accepts timeouts from 1 second,
so tests in one module do not wait on each other's capacity and timeout tests stay quick. Tests
that need other sizes, chaos or a state dir use `local_cloud_factory`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from snakemake_executor_awsbatch.localcloud import LocalCloud

TEST_CLOUD_SETTINGS: dict[str, Any] = {"vcpus": 16, "memory_mib": 32768, "min_timeout_seconds": 1}


@pytest.fixture(scope="module")
def local_cloud() -> Iterator[LocalCloud]:
    """A running local cloud shared by the tests of one module."""
    with LocalCloud(**TEST_CLOUD_SETTINGS) as cloud:
        yield cloud


@pytest.fixture
def local_cloud_factory() -> Iterator[Callable[..., LocalCloud]]:
    """Start local clouds with custom arguments (LocalCloud's); all are stopped after the test."""
    started: list[LocalCloud] = []

    def start(**kwargs: Any) -> LocalCloud:
        settings = {**TEST_CLOUD_SETTINGS, **kwargs}
        cloud = LocalCloud(**settings)
        cloud.start()
        started.append(cloud)
        return cloud

    yield start
    for cloud in reversed(started):
        cloud.stop()
