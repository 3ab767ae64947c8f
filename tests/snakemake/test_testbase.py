"""Snakemake's own executor test base (`snakemake.common.tests`) with this executor.

The `simple` and `groups` cases run on the local cloud with Snakemake's S3 storage plugin and no
shared file system, exactly as Snakemake's maintainers test executor plugins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from smk_helpers import LOCAL_IMAGE, register_plugin
from snakemake.common.tests import TestWorkflowsMinioPlayStorageBase
from snakemake.settings import types as settings

from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.settings import ExecutorSettings

pytestmark = pytest.mark.e2e


class TestWorkflows(TestWorkflowsMinioPlayStorageBase):
    """The upstream test cases with `--executor awsbatch` on the local cloud."""

    __test__ = True
    cloud: LocalCloud

    @pytest.fixture(autouse=True)
    def _on_local_cloud(
        self, local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[None]:
        register_plugin()
        self.cloud = local_cloud
        for name, value in local_cloud.client_env().items():
            monkeypatch.setenv(name, value)
        yield

    def get_executor(self) -> str:
        return "awsbatch"

    def get_executor_settings(self) -> Any:
        return ExecutorSettings(
            queue=self.cloud.queue_name,
            image=LOCAL_IMAGE,
            region=self.cloud.region,
            endpoint_url=self.cloud.endpoint_url,
        )

    def get_assume_shared_fs(self) -> bool:
        return False

    def get_remote_execution_settings(self) -> settings.RemoteExecutionSettings:
        return settings.RemoteExecutionSettings(
            seconds_between_status_checks=1, envvars=self.get_envvars()
        )

    @property
    def endpoint_url(self) -> str:
        return self.cloud.endpoint_url

    @property
    def access_key(self) -> str:
        return self.cloud.client_env()["AWS_ACCESS_KEY_ID"]

    @property
    def secret_key(self) -> str:
        return self.cloud.client_env()["AWS_SECRET_ACCESS_KEY"]
