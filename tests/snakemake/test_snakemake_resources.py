"""Rule resources -> TaskSpec fields."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.settings import BatchConfig
from snakemake_executor_awsbatch.snakemake_resources import JobResources, batch_job_name, task_spec
from snakemake_executor_awsbatch.taskspec import LaunchSpec, Platform, StagingManifest

CONFIG = BatchConfig(
    queue="q-default", image="img:1", tags=MappingProxyType({"team": "x"}), min_memory_mib=256
)
LAUNCH = LaunchSpec(staging=StagingManifest(prefix="s3://b/p/job"), shell="true")


def _job(threads: int = 1, preemptible: bool = False, **resources: object) -> JobResources:
    return JobResources(
        rule="align", jobid=7, threads=threads, resources=resources, preemptible=preemptible
    )


def test_threads_memory_gpu_and_runtime_map_to_batch_fields() -> None:
    spec = task_spec(_job(threads=3, mem_mb=2000, gpu=1, runtime=30), CONFIG, LAUNCH)
    assert spec.vcpus == 3.0
    assert spec.memory_mib == 1908  # 2000 MB = 1907.35 MiB, rounded up
    assert spec.gpus == 1
    assert spec.timeout_seconds == 1800
    assert spec.queue == "q-default" and spec.image == "img:1"
    assert dict(spec.tags) == {"team": "x", "snakemake-rule": "align"}
    assert spec.launch is LAUNCH


def test_mem_mib_wins_and_short_runtime_is_raised_to_batch_minimum() -> None:
    spec = task_spec(_job(mem_mb=99999, mem_mib=512, runtime=0.5), CONFIG, LAUNCH)
    assert spec.memory_mib == 512
    assert spec.timeout_seconds == 60


def test_memory_floor_covers_snakemake_inside_the_job() -> None:
    assert task_spec(_job(mem_mb=5), CONFIG, LAUNCH).memory_mib == 256


def test_group_cores_raise_vcpus() -> None:
    assert task_spec(_job(threads=1, _cores=4), CONFIG, LAUNCH).vcpus == 4.0


def test_per_rule_queue_image_platform() -> None:
    spec = task_spec(
        _job(
            awsbatch_queue="gpu-q",
            awsbatch_image="other:2",
            awsbatch_platform="fargate",
            mem_mib=3000,
            disk_mb=50_000,
        ),
        CONFIG,
        LAUNCH,
    )
    assert (spec.queue, spec.image, spec.platform) == ("gpu-q", "other:2", Platform.FARGATE)
    assert (spec.vcpus, spec.memory_mib) == (1.0, 3072)  # snapped to a Fargate size
    assert spec.ephemeral_storage_gib == 47


def test_disk_over_fargate_limit_is_refused() -> None:
    with pytest.raises(UserError, match="200 GiB"):
        task_spec(_job(awsbatch_platform="FARGATE", disk_mb=300_000_000), CONFIG, LAUNCH)


def test_preemptible_rules_use_preemptible_retries() -> None:
    plain = task_spec(_job(), CONFIG, LAUNCH, preemptible_retries=5)
    preempt = task_spec(_job(preemptible=True), CONFIG, LAUNCH, preemptible_retries=5)
    assert plain.retry.spot_retries == CONFIG.spot_retries
    assert preempt.retry.spot_retries == 5
    assert preempt.retry.total_attempts == 6


@pytest.mark.parametrize(
    ("resources", "fragment"),
    [
        ({"runtime": "soon"}, "not a number"),
        ({"runtime": -1}, "not positive"),
        ({"awsbatch_image": "bad image"}, "not a valid image"),
        ({"awsbatch_platform": "mainframe"}, "platform"),
        ({"gpu": "many"}, "whole number"),
    ],
)
def test_bad_resources_are_user_errors(resources: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        task_spec(_job(**resources), CONFIG, LAUNCH)


def test_job_names_are_valid_for_batch() -> None:
    name = batch_job_name("a.b/c" * 40, 12345)
    assert len(name) <= 128 and name.endswith("-12345") and name[0].isalnum()
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
