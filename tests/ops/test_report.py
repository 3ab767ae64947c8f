"""Loading a run from S3 + DescribeJobs, per-rule aggregation, cost estimate and text summary."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.ops.cost import (
    FAMILIES,
    FARGATE_GIB_HOUR,
    FARGATE_VCPU_HOUR,
    SPOT_FACTOR,
    job_cost_usd,
)
from snakemake_executor_awsbatch.ops.report import render_text
from snakemake_executor_awsbatch.ops.report_html import render_html
from snakemake_executor_awsbatch.ops.runload import load_run, rule_from_dir, task_prefixes

from .runfixture import RUN, describe, write_run


@pytest.fixture()
def s3(moto_s3: Any) -> Any:
    """A moto S3 client with the two-rule run written."""
    write_run(moto_s3)
    return moto_s3


def test_rule_names_come_from_task_directories() -> None:
    assert rule_from_dir("bwa_map-12-0a1b2c3d") == "bwa_map"
    assert rule_from_dir("align_reads-0a1b2c3d") == "align_reads"
    assert rule_from_dir("plain") == "plain"


def test_nested_spec_files_are_not_tasks() -> None:
    keys = ["r/a-1-0a1b2c3d/spec.json", "r/a-1-0a1b2c3d/outdir/spec.json", "r/b-0a1b2c3d/spec.json"]
    assert task_prefixes(keys, "r/") == ["a-1-0a1b2c3d", "b-0a1b2c3d"]


def test_run_loads_tasks_rules_and_retries(s3: Any) -> None:
    report = load_run(s3, RUN, describe)
    assert [t.rule for t in report.tasks] == ["bwa_map", "bwa_map", "call", "never-ran"]
    by_rule = {r.rule: r for r in report.rules}
    bwa = by_rule["bwa_map"]
    assert (bwa.jobs, bwa.failed, bwa.retries) == (2, 0, 1)
    assert bwa.peak_memory_mib == 1800.0
    assert bwa.requested_memory_mib == 4096
    assert bwa.suggested_memory_mib == 2304  # 1800 * 1.2 = 2160, rounded up to 256 MiB
    assert bwa.bytes_in == 120_000_000
    # Run time counts every attempt: 120 s + (54 s reclaimed + 120 s).
    assert bwa.run_seconds == pytest.approx(294.0)
    call = by_rule["call"]
    assert (call.jobs, call.failed, call.retries) == (1, 1, 0)
    assert any("never-ran-4-3a1b2c3d: no report.json" in n for n in report.notes)


def test_cost_is_spot_priced_share_of_the_instance(s3: Any) -> None:
    report = load_run(s3, RUN, describe)
    task = next(t for t in report.tasks if t.job_id == "job-map-1")
    # 2 vCPUs and 4 GiB on r6i (8 GiB per vCPU): the vCPUs dominate; 120 s at the spot price.
    expected = 120 / 3600 * 2 * FAMILIES["r6i"].usd_per_vcpu_hour * SPOT_FACTOR
    assert task.cost_usd == pytest.approx(expected)
    assert report.cost_usd == pytest.approx(sum(r.cost_usd for r in report.rules))


def test_memory_heavy_job_pays_for_the_vcpus_it_blocks() -> None:
    light = job_cost_usd(vcpus=1, memory_mib=2048, seconds=3600, instance_type="c6i", spot=False)
    heavy = job_cost_usd(vcpus=1, memory_mib=16384, seconds=3600, instance_type="c6i", spot=False)
    assert light == pytest.approx(FAMILIES["c6i"].usd_per_vcpu_hour)
    assert heavy == pytest.approx(8 * FAMILIES["c6i"].usd_per_vcpu_hour)


def test_without_describe_jobs_times_come_from_reports(s3: Any) -> None:
    report = load_run(s3, RUN, describe=None)
    task = next(t for t in report.tasks if t.job_id == "job-map-2")
    assert len(task.attempts) == 1
    assert task.attempts[0].seconds == pytest.approx(100.0)
    assert task.status == "SUCCEEDED"


def test_text_summary_lists_rules_retries_and_estimate(s3: Any) -> None:
    text = render_text(load_run(s3, RUN, describe))
    lines = text.splitlines()
    assert lines[0] == f"run {RUN}: 4 task(s)"
    assert any(line.startswith("bwa_map ") and " 2304M " in line for line in lines)
    assert "retry: bwa_map job-map-2 attempt 1: Host EC2 (instance i-0abc) terminated." in lines
    assert "ESTIMATE" in text


def test_html_is_self_contained_with_timeline(s3: Any) -> None:
    html = render_html(load_run(s3, RUN, describe))
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert html.count("<rect") >= 4 + 3  # attempts + queued bars + memory bars
    assert "Host EC2 (instance i-0abc) terminated." in html


def test_empty_prefix_is_a_user_error(s3: Any) -> None:
    with pytest.raises(UserError, match="No tasks"):
        load_run(s3, "s3://runs-bucket/nothing-here", describe)


def test_manifest_names_rules_and_job_ids(s3: Any) -> None:
    bucket, _, key = RUN[len("s3://") :].partition("/")
    s3.put_object(Bucket=bucket, Key=f"{key}/extra-0a0a0a0a/spec.json", Body=b"{}")
    manifest = {"tasks": {"extra-0a0a0a0a": {"job_id": "job-call-1", "rule": "from_manifest"}}}
    s3.put_object(Bucket=bucket, Key=f"{key}/awsbatch-run.json", Body=json.dumps(manifest).encode())
    report = load_run(s3, RUN, describe)
    extra = next(t for t in report.tasks if t.prefix.endswith("extra-0a0a0a0a"))
    assert extra.rule == "from_manifest"
    assert extra.job_id == "job-call-1"
    assert extra.status == "FAILED"  # from DescribeJobs, since the task has no report
    assert not extra.has_report


def test_fargate_cost_uses_fargate_rates() -> None:
    cost = job_cost_usd(
        vcpus=2, memory_mib=4096, seconds=1800, instance_type=None, spot=False, fargate=True
    )
    assert cost == pytest.approx(0.5 * (2 * FARGATE_VCPU_HOUR + 4 * FARGATE_GIB_HOUR))


def test_parent_of_several_runs_reports_the_newest(s3: Any) -> None:
    bucket, _, key = RUN[len("s3://") :].partition("/")
    parent = key.rpartition("/")[0]
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    newer = f"{parent}/aaa-newer-run"  # sorts first: only its time can make it win
    s3.put_object(Bucket=bucket, Key=f"{newer}/only-1-0b0b0b0b/spec.json", Body=b"{}")
    report = load_run(s3, f"s3://{bucket}/{parent}", describe)
    assert report.run_uri == f"s3://{bucket}/{newer}"
    assert [t.rule for t in report.tasks] == ["only"]
    assert "2 runs under the prefix; this is the newest" in report.notes


def test_job_file_gives_the_id_of_a_job_whose_launcher_never_ran(s3: Any) -> None:
    bucket, _, key = RUN[len("s3://") :].partition("/")
    s3.put_object(
        Bucket=bucket,
        Key=f"{key}/never-ran-4-3a1b2c3d/job.json",
        Body=json.dumps({"job_id": "job-pull"}).encode(),
    )
    pull_failed = {
        "jobId": "job-pull",
        "jobName": "never-ran",
        "jobQueue": "q",
        "status": "FAILED",
        "statusReason": "CannotPullContainerError: pull access denied",
        "createdAt": 1_700_000_000_000,
        "jobDefinition": "d:1",
        "attempts": [],
    }

    def describe_with_pull(ids: Any) -> list[dict[str, Any]]:
        return [*describe(ids), *([pull_failed] if "job-pull" in ids else [])]

    report = load_run(s3, RUN, describe_with_pull)
    task = next(t for t in report.tasks if t.rule == "never-ran")
    assert (task.job_id, task.status) == ("job-pull", "FAILED")
    assert task.status_reason == "CannotPullContainerError: pull access denied"
    text = render_text(report)
    assert "failed: never-ran job-pull: CannotPullContainerError: pull access denied" in text
    assert "<td>CannotPullContainerError: pull access denied</td>" in render_html(report)
