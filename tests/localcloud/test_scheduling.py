"""The engine's scheduling: dependencies, arrays, failures, retries, timeouts, terminate/cancel,
memory kills and capacity, all driven through plain boto3."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from localcloud.helpers import client, log_lines, register, wait
from snakemake_executor_awsbatch.localcloud import LocalCloud


@pytest.fixture(scope="module")
def batch(local_cloud: LocalCloud) -> Any:
    return client(local_cloud, "batch")


def submit(batch: Any, cloud: LocalCloud, jobdef: str, name: str, **extra: Any) -> str:
    response = batch.submit_job(
        jobName=name, jobQueue=cloud.queue_name, jobDefinition=jobdef, **extra
    )
    return str(response["jobId"])


def test_dependency_chain_runs_in_order(local_cloud: LocalCloud, batch: Any) -> None:
    marker = local_cloud.state_dir / "chain.txt"
    arn = register(batch, "chain", ["sh", "-c", f"echo Ref::step >> {marker}"])
    first = submit(batch, local_cloud, arn, "c1", parameters={"step": "1"})
    second = submit(
        batch, local_cloud, arn, "c2", parameters={"step": "2"}, dependsOn=[{"jobId": first}]
    )
    third = submit(
        batch, local_cloud, arn, "c3", parameters={"step": "3"}, dependsOn=[{"jobId": second}]
    )
    done = wait(batch, third)
    assert done["status"] == "SUCCEEDED"
    assert done["dependsOn"] == [{"jobId": second}]
    assert marker.read_text().split() == ["1", "2", "3"]
    records = {j["jobId"]: j for j in batch.describe_jobs(jobs=[first, second, third])["jobs"]}
    assert records[first]["stoppedAt"] <= records[second]["startedAt"]
    assert records[second]["stoppedAt"] <= records[third]["startedAt"]


def test_array_job_with_n_to_n_and_sequential(local_cloud: LocalCloud, batch: Any) -> None:
    out = local_cloud.state_dir / "array"
    out.mkdir()
    arn = register(batch, "arr", ["sh", "-c", f"echo Ref::tag >> {out}/$AWS_BATCH_JOB_ARRAY_INDEX"])
    first = submit(
        batch, local_cloud, arn, "arr1", arrayProperties={"size": 3}, parameters={"tag": "a"}
    )
    second = submit(
        batch,
        local_cloud,
        arn,
        "arr2",
        arrayProperties={"size": 3},
        parameters={"tag": "b"},
        dependsOn=[{"jobId": first, "type": "N_TO_N"}],
    )
    seq = submit(
        batch,
        local_cloud,
        arn,
        "arr3",
        arrayProperties={"size": 3},
        parameters={"tag": "c"},
        dependsOn=[{"type": "SEQUENTIAL"}],
    )
    for job_id in (second, seq):
        assert wait(batch, job_id)["status"] == "SUCCEEDED"
    parent = wait(batch, first)
    assert parent["arrayProperties"]["size"] == 3
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    children = batch.describe_jobs(jobs=[f"{second}:{i}" for i in range(3)])["jobs"]
    assert [c["arrayProperties"]["index"] for c in children] == [0, 1, 2]
    firsts = batch.describe_jobs(jobs=[f"{first}:{i}" for i in range(3)])["jobs"]
    for a, b in zip(firsts, children, strict=True):
        assert a["stoppedAt"] <= b["startedAt"]
    seqs = batch.describe_jobs(jobs=[f"{seq}:{i}" for i in range(3)])["jobs"]
    assert (
        seqs[0]["stoppedAt"] <= seqs[1]["startedAt"] <= seqs[1]["stoppedAt"] <= seqs[2]["startedAt"]
    )
    for i in range(3):
        assert sorted((out / str(i)).read_text().split()) == ["a", "b", "c"]
    listed = batch.list_jobs(arrayJobId=first, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(s["jobId"] for s in listed) == [f"{first}:{i}" for i in range(3)]


def test_failed_job_fails_its_dependents(local_cloud: LocalCloud, batch: Any) -> None:
    bad = register(batch, "bad", ["sh", "-c", "echo oops; exit 3"])
    good = register(batch, "good", ["true"])
    failing = submit(batch, local_cloud, bad, "failing")
    child = submit(batch, local_cloud, good, "child", dependsOn=[{"jobId": failing}])
    grandchild = submit(batch, local_cloud, good, "grandchild", dependsOn=[{"jobId": child}])
    failed = wait(batch, failing)
    assert failed["status"] == "FAILED"
    assert failed["container"]["exitCode"] == 3
    assert failed["statusReason"] == "Essential container in task exited"
    for dependent in (child, grandchild):
        record = wait(batch, dependent)
        assert record["status"] == "FAILED"
        assert record["statusReason"] == "Dependent Job failed"
        assert record["attempts"] == []


def test_retry_succeeds_on_second_attempt(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "flaky", ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" = 2 || exit 7'])
    job = submit(
        batch,
        local_cloud,
        arn,
        "flaky",
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"onExitCode": "7", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
    )
    done = wait(batch, job)
    assert done["status"] == "SUCCEEDED"
    attempts = done["attempts"]
    assert [a["container"]["exitCode"] for a in attempts] == [7, 0]
    assert attempts[0]["stoppedAt"] <= attempts[1]["startedAt"]
    assert attempts[0]["container"]["logStreamName"] != attempts[1]["container"]["logStreamName"]


def test_exit_rule_stops_retries(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "exits", ["sh", "-c", "exit 9"])
    job = submit(
        batch,
        local_cloud,
        arn,
        "exits",
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"onExitCode": "9", "action": "exit"}]},
    )
    done = wait(batch, job)
    assert done["status"] == "FAILED"
    assert len(done["attempts"]) == 1


def test_timeout_fails_the_attempt_without_retry(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "sleeper", ["sleep", "30"])
    job = submit(
        batch,
        local_cloud,
        arn,
        "sleeper",
        timeout={"attemptDurationSeconds": 1},
        retryStrategy={"attempts": 2},
    )
    done = wait(batch, job, timeout=20)
    assert done["status"] == "FAILED"
    assert done["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(done["attempts"]) == 1
    assert done["stoppedAt"] - done["startedAt"] < 10_000


def test_terminate_running_and_cancel_queued(local_cloud: LocalCloud, batch: Any) -> None:
    pidfile = local_cloud.state_dir / "terminated.pid"
    arn = register(batch, "long", ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"])
    running = submit(batch, local_cloud, arn, "long")
    queued = submit(batch, local_cloud, arn, "queued", dependsOn=[{"jobId": running}])
    wait(batch, running, statuses=("RUNNING",))
    batch.cancel_job(jobId=queued, reason="no longer wanted")
    cancelled = wait(batch, queued)
    assert cancelled["status"] == "FAILED" and cancelled["isCancelled"] is True
    assert cancelled["statusReason"] == "no longer wanted"
    batch.cancel_job(jobId=running, reason="cancel does not stop a running job")
    time.sleep(0.3)
    assert batch.describe_jobs(jobs=[running])["jobs"][0]["status"] == "RUNNING"
    while not pidfile.exists() or not pidfile.read_text().strip():
        time.sleep(0.05)
    sleeper = int(pidfile.read_text())
    batch.terminate_job(jobId=running, reason="user stop")
    done = wait(batch, running)
    assert done["status"] == "FAILED" and done["isTerminated"] is True
    assert done["statusReason"] == "user stop"
    assert len(done["attempts"]) == 1
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            __import__("os").kill(sleeper, 0)
            time.sleep(0.05)


def test_memory_limit_kills_the_job(local_cloud: LocalCloud, batch: Any) -> None:
    hog = "x = bytearray(300 * 1024 * 1024); import time; time.sleep(30)"
    arn = register(batch, "hog", ["python", "-c", hog], memory="100")
    done = wait(batch, submit(batch, local_cloud, arn, "hog"), timeout=30)
    assert done["status"] == "FAILED"
    assert done["container"]["exitCode"] == 137
    assert done["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_job_larger_than_environment_stays_runnable(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "huge", ["true"], vcpus="64")
    job = submit(batch, local_cloud, arn, "huge")
    record = wait(batch, job, statuses=("RUNNABLE",))
    deadline = time.monotonic() + 5
    while "statusReason" not in record and time.monotonic() < deadline:
        time.sleep(0.05)
        record = batch.describe_jobs(jobs=[job])["jobs"][0]
    assert record["status"] == "RUNNABLE"
    assert record["statusReason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    small = submit(batch, local_cloud, register(batch, "small", ["true"]), "small")
    assert wait(batch, small)["status"] == "SUCCEEDED"
    batch.terminate_job(jobId=job, reason="too large")
    assert wait(batch, job)["status"] == "FAILED"


def test_capacity_is_shared_in_fifo_order(local_cloud_factory: Any) -> None:
    cloud = local_cloud_factory(vcpus=2, memory_mib=1024)
    batch = client(cloud, "batch")
    arn = register(batch, "wide", ["sleep", "2"], vcpus="2")
    first = submit(batch, cloud, arn, "w1")
    second = submit(batch, cloud, arn, "w2", containerOverrides={"command": ["true"]})
    wait(batch, first, statuses=("RUNNING",))
    assert batch.describe_jobs(jobs=[second])["jobs"][0]["status"] == "RUNNABLE"
    a, b = wait(batch, first), wait(batch, second)
    assert a["stoppedAt"] <= b["startedAt"]


def test_a_waiting_wide_job_is_not_starved_by_narrow_jobs_behind_it(
    local_cloud_factory: Any,
) -> None:
    cloud = local_cloud_factory(vcpus=2, memory_mib=1024)
    batch = client(cloud, "batch")
    gate = cloud.state_dir / "narrow-gate"
    narrow = register(batch, "narrow", ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"])
    wide = register(batch, "wide2", ["true"], vcpus="2")
    first = submit(batch, cloud, narrow, "n1")
    wait(batch, first, statuses=("RUNNING",))
    blocked = submit(batch, cloud, wide, "wide")
    later = submit(batch, cloud, narrow, "n2")
    time.sleep(0.5)
    # One vCPU is free, but it is held for the wide job ahead in the queue, as Batch's FIFO
    # queue would (head-of-line blocking), so the later narrow job may not take it.
    states = {j["jobName"]: j["status"] for j in batch.describe_jobs(jobs=[blocked, later])["jobs"]}
    assert states == {"wide": "RUNNABLE", "n2": "RUNNABLE"}
    gate.touch()
    wide_done, later_done = wait(batch, blocked), wait(batch, later)
    assert wide_done["status"] == later_done["status"] == "SUCCEEDED"
    assert wide_done["startedAt"] <= later_done["startedAt"]


def test_output_goes_to_the_log_stream_even_on_failure(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(
        batch, "noisy", ["sh", "-c", "for i in 1 2 3; do echo line$i; done; echo err >&2; exit 1"]
    )
    done = wait(batch, submit(batch, local_cloud, arn, "noisy"))
    lines = log_lines(client(local_cloud, "logs"), done["container"]["logStreamName"])
    assert lines == ["line1", "line2", "line3", "err"]


def test_dependency_on_whole_array_waits_for_every_child(
    local_cloud: LocalCloud, batch: Any
) -> None:
    arn = register(batch, "arr-whole", ["sh", "-c", "sleep 0.$AWS_BATCH_JOB_ARRAY_INDEX"])
    array = submit(batch, local_cloud, arn, "whole", arrayProperties={"size": 3})
    after = submit(
        batch,
        local_cloud,
        register(batch, "after", ["true"]),
        "after",
        dependsOn=[{"jobId": array}],
    )
    done = wait(batch, after)
    assert done["status"] == "SUCCEEDED"
    children = batch.describe_jobs(jobs=[f"{array}:{i}" for i in range(3)])["jobs"]
    assert max(c["stoppedAt"] for c in children) <= done["startedAt"]


def test_terminating_an_array_stops_all_children(local_cloud: LocalCloud, batch: Any) -> None:
    arn = register(batch, "arr-long", ["sleep", "30"])
    array = submit(batch, local_cloud, arn, "arr-long", arrayProperties={"size": 3})
    wait(batch, f"{array}:0", statuses=("RUNNING",))
    result = batch.terminate_jobs(jobs=[array, "no-such-job"], reason="stop them all")
    assert result["successful"] == [array]
    assert [e["job"] for e in result["errors"]] == ["no-such-job"]
    parent = wait(batch, array, timeout=20)
    assert parent["status"] == "FAILED" and parent["isTerminated"] is True
    children = batch.describe_jobs(jobs=[f"{array}:{i}" for i in range(3)])["jobs"]
    assert {c["status"] for c in children} == {"FAILED"}
    assert {c["statusReason"] for c in children} == {"stop them all"}
    assert parent["arrayProperties"]["statusSummary"]["FAILED"] == 3


def test_oom_can_be_retried_with_an_exit_rule_on_reason(
    local_cloud: LocalCloud, batch: Any
) -> None:
    grow = (
        'import os; n = 300 if os.environ["AWS_BATCH_JOB_ATTEMPT"] == "1" else 1; '
        "x = bytearray(n * 1024 * 1024); import time; time.sleep(1 if n > 1 else 0)"
    )
    arn = register(batch, "grow", ["python", "-c", grow], memory="100")
    job = submit(
        batch,
        local_cloud,
        arn,
        "grow",
        retryStrategy={
            "attempts": 2,
            "evaluateOnExit": [
                {"onReason": "OutOfMemoryError*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
    )
    done = wait(batch, job, timeout=30)
    assert done["status"] == "SUCCEEDED"
    assert done["attempts"][0]["container"]["exitCode"] == 137
    assert done["attempts"][0]["container"]["reason"].startswith("OutOfMemoryError")


def test_job_without_command_fails_to_start(local_cloud: LocalCloud, batch: Any) -> None:
    arn = batch.register_job_definition(
        jobDefinitionName="no-command",
        type="container",
        containerProperties={
            "image": "busybox",
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    )["jobDefinitionArn"]
    done = wait(batch, submit(batch, local_cloud, arn, "no-command"))
    assert done["status"] == "FAILED"
    assert done["statusReason"] == "Task failed to start"
    assert done["container"]["reason"].startswith("CannotStartContainerError")


def test_memory_shared_after_fork_counts_once(local_cloud: LocalCloud, batch: Any) -> None:
    # Two processes sharing 60 MiB copy-on-write: their resident sets add up to over 120 MiB, the
    # pages they use to about 70 MiB, under the 100 MiB limit (a cgroup would count them once).
    script = (
        "import os, time; x = bytearray(60 * 1024 * 1024); pid = os.fork(); time.sleep(1.5); "
        "os._exit(0) if pid == 0 else os.waitpid(pid, 0)"
    )
    arn = register(batch, "forker", ["python", "-c", script], memory="100")
    done = wait(batch, submit(batch, local_cloud, arn, "forker"), timeout=30)
    assert done["status"] == "SUCCEEDED", done.get("container")


def test_wait_for_job_end_wakes_on_an_end_and_times_out_otherwise(
    local_cloud: LocalCloud, batch: Any
) -> None:
    gate = local_cloud.state_dir / "end-gate"
    arn = register(batch, "gated", ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"])
    seen = local_cloud.wait_for_job_end(0, timeout=0)
    job = submit(batch, local_cloud, arn, "gated")
    # Nothing has ended yet: the wait runs out and reports the same count.
    assert local_cloud.wait_for_job_end(seen, timeout=0.3) == seen
    gate.touch()
    after = local_cloud.wait_for_job_end(seen, timeout=30)
    assert after == seen + 1
    assert wait(batch, job)["status"] == "SUCCEEDED"


def test_released_waiters_return_at_once_with_the_count_unchanged(
    local_cloud: LocalCloud,
) -> None:
    seen = local_cloud.wait_for_job_end(0, timeout=0)
    results: list[tuple[int, float]] = []

    def waiter() -> None:
        began = time.monotonic()
        results.append((local_cloud.wait_for_job_end(seen, timeout=30), time.monotonic() - began))

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)  # the waiter is inside its wait
    local_cloud.release_job_end_waiters()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the waiter was not released"
    ((count, waited),) = results
    assert count == seen and waited < 10
    # A wait begun after the release waits as usual.
    assert local_cloud.wait_for_job_end(seen, timeout=0.2) == seen


def test_vcpus_the_host_holds_for_its_other_work_are_not_planned_with(
    local_cloud_factory: Any,
) -> None:
    # Two vCPUs, both held by work the cloud does not run (a workflow engine's local jobs).
    cloud = local_cloud_factory(vcpus=2)
    held = [2.0]
    cloud.share_host(lambda: held[0])
    batch = client(cloud, "batch")
    one = register(batch, "host-one", ["true"], vcpus="1")
    two = register(batch, "host-two", ["true"], vcpus="2")
    small = submit(batch, cloud, one, "small")
    large = submit(batch, cloud, two, "large")
    time.sleep(0.3)
    states = {j["jobName"]: j["status"] for j in batch.describe_jobs(jobs=[small, large])["jobs"]}
    assert states == {"small": "RUNNABLE", "large": "RUNNABLE"}
    # One vCPU comes free: the one-vCPU job runs, the two-vCPU job still waits.
    held[0] = 1.0
    assert wait(batch, small)["status"] == "SUCCEEDED"
    assert batch.describe_jobs(jobs=[large])["jobs"][0]["status"] == "RUNNABLE"
    # The host's work ends: nothing tells the cloud, which looks again by itself.
    held[0] = 0.0
    assert wait(batch, large)["status"] == "SUCCEEDED"


def test_a_host_load_that_cannot_be_read_leaves_every_vcpu_to_the_jobs(
    local_cloud_factory: Any,
) -> None:
    cloud = local_cloud_factory(vcpus=2)

    def broken() -> float:
        raise RuntimeError("scheduler gone")

    cloud.share_host(broken)
    batch = client(cloud, "batch")
    arn = register(batch, "host-broken", ["true"], vcpus="2")
    assert wait(batch, submit(batch, cloud, arn, "runs"))["status"] == "SUCCEEDED"
