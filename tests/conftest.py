"""Shared fixtures: a local cloud per test module, a factory for clouds with custom settings, and
an in-process moto S3 client.

The module-wide cloud is sized generously (16 vCPUs, 32 GiB) and accepts timeouts from 1 second,
so tests in one module do not wait on each other's capacity and timeout tests stay quick. Tests
that need other sizes, chaos or a state dir use `local_cloud_factory`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from snakemake_executor_awsbatch.localcloud import LocalCloud

TEST_CLOUD_SETTINGS: dict[str, Any] = {"vcpus": 16, "memory_mib": 32768, "min_timeout_seconds": 1}
# Snakemake's S3 storage plugin sets these to `when_required` in os.environ when it is imported
# (a test that builds Snakemake's command-line parser imports it). Left set, every later boto3
# client of the test process stops adding checksums to uploads, and a test that counts verified
# downloads failed depending on which tests ran before it.
PLUGIN_SET_ENV = ("AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION")


@pytest.fixture(autouse=True)
def botocore_checksum_defaults() -> Iterator[None]:
    """Give each test the checksum settings the process started with (see PLUGIN_SET_ENV)."""
    saved = {name: os.environ.get(name) for name in PLUGIN_SET_ENV}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 client on moto's in-process mock, with fake credentials and no endpoint override."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")
