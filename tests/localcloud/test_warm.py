"""Launcher jobs forked from a warm interpreter (localcloud.warm): a job sees exactly what a cold
start would give it, the runner sees it as it sees a cold process, and only jobs whose start the
interpreter could not change are forked."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snakemake_executor_awsbatch.localcloud import warm
from snakemake_executor_awsbatch.localcloud.model import Bind, ContainerPlan
from snakemake_executor_awsbatch.localcloud.warm import (
    LAUNCHER_MODULE,
    ForkedContainer,
    WarmPool,
    environment_key,
    module_args,
)

PROBE = "tests.localcloud.warm_probe"
REPO = Path(__file__).resolve().parents[2]


def _plan(
    env: dict[str, str], *args: str, module: str = PROBE, binds: tuple[Bind, ...] = ()
) -> ContainerPlan:
    return ContainerPlan(
        name="default",
        argv=("python", "-m", module, *args),
        env=tuple(env.items()),
        binds=binds,
        log_stream="probe/default/1",
        memory_mib=256,
    )


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "PYTHONPATH": str(REPO),
        "WARM_PROBE_MARKER": str(tmp_path / "warmed"),
        "JOB_SETTING": "same-for-every-job",
    }


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[WarmPool]:
    pool = WarmPool(tmp_path / "start", module=PROBE)
    yield pool
    pool.stop()


def _ready_interpreter(pool: WarmPool, env: dict[str, str]) -> int:
    """Have the pool start an interpreter for `env`; its pid once it has run warm_up."""
    marker = Path(env["WARM_PROBE_MARKER"])
    marker.unlink(missing_ok=True)
    pool.replenish(_plan(env))
    deadline = time.monotonic() + 20
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the interpreter never ran warm_up"
        time.sleep(0.02)
    return int(marker.read_text())


def _output(container: ForkedContainer) -> dict[str, Any]:
    assert container.stdout is not None
    seen: dict[str, Any] = json.loads(container.stdout.readline())
    return seen


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_forked_job_sees_what_a_cold_start_gives_it(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    # The interpreter loaded the module (and ran its warm_up) before any job existed.
    warm_pid = _ready_interpreter(pool, base_env)
    job_env = {**base_env, "AWS_BATCH_JOB_ID": "job-1", "AWS_BATCH_JOB_ATTEMPT": "1"}
    workdir = tmp_path / "job"
    workdir.mkdir()
    container = pool.take(_plan(job_env, "3", "s3://bucket/spec.json"), workdir)
    assert container is not None
    # Its own session and process group from the moment it is handed over, as a cold container.
    assert os.getpgid(container.pid) == container.pid == os.getsid(container.pid)
    seen = _output(container)
    assert seen["ppid"] == warm_pid and seen["pid"] == container.pid
    assert seen["cwd"] == str(workdir)
    assert seen["path0"] == str(workdir)
    assert seen["argv"] == ["3", "s3://bucket/spec.json"]
    assert seen["env"] == job_env
    assert seen["stdin"] == ""
    assert seen["name"] == "__main__"
    container.wait_until_exited()
    # Exited but not reaped: the pid (and so the group id) is still reserved.
    assert Path(f"/proc/{container.pid}").exists()
    assert container.wait() == 3
    assert _gone(container.pid)
    assert pool.handed_out == 1


def test_jobs_forked_side_by_side_and_a_signal_shows_as_popen_shows_it(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    _ready_interpreter(pool, base_env)
    sleeper = pool.take(_plan(base_env, "0", "sleep"), tmp_path)
    quick = pool.take(_plan(base_env, "5"), tmp_path)
    assert sleeper is not None and quick is not None
    assert _output(sleeper)["argv"] == ["0", "sleep"]
    assert _output(quick)["argv"] == ["5"]
    assert quick.wait() == 5
    os.killpg(sleeper.pid, signal.SIGTERM)
    sleeper.wait_until_exited()
    assert sleeper.wait() == -signal.SIGTERM


def test_another_start_environment_starts_cold_until_it_has_its_interpreter(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    first = _ready_interpreter(pool, base_env)
    other = {**base_env, "PYTHONHASHSEED": "7"}
    assert pool.take(_plan(other, "0"), tmp_path) is None
    second = _ready_interpreter(pool, other)
    assert second != first
    container = pool.take(_plan(other, "0"), tmp_path)
    assert container is not None
    assert _output(container)["ppid"] == second
    assert container.wait() == 0
    # The first one may still have jobs: it is ended with the pool, not before.
    assert Path(f"/proc/{first}").exists()
    pool.stop()
    assert _gone(first) and _gone(second)


@pytest.mark.parametrize(
    "plan",
    [
        _plan({}, "0", binds=(Bind(Path("/tmp"), "/mnt/ref", True),)),
        _plan({}, "0", module="some.other.module"),
        ContainerPlan("c", ("bash", "-c", "true"), (), (), "s", 256),
    ],
    ids=["volumes", "another-module", "not-python"],
)
def test_containers_it_cannot_start_the_same_way_start_cold(
    pool: WarmPool, plan: ContainerPlan, tmp_path: Path
) -> None:
    pool.replenish(plan)
    assert pool.take(plan, tmp_path) is None
    assert pool.handed_out == 0


def test_stop_ends_the_interpreter_and_starts_no_more(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    pid = _ready_interpreter(pool, base_env)
    pool.stop()
    assert _gone(pid)
    pool.replenish(_plan(base_env))
    assert pool.take(_plan(base_env, "0"), tmp_path) is None


def test_a_dead_interpreter_is_replaced_and_its_running_job_is_reported_killed(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    pid = _ready_interpreter(pool, base_env)
    sleeper = pool.take(_plan(base_env, "0", "sleep"), tmp_path)
    assert sleeper is not None
    _output(sleeper)
    os.kill(pid, signal.SIGKILL)
    sleeper.wait_until_exited()
    assert sleeper.wait() == -signal.SIGKILL
    # The orphan is the runner's to stop, as it stops whatever a job leaves in its group.
    os.killpg(sleeper.pid, signal.SIGKILL)
    assert _gone(pid)
    assert pool.take(_plan(base_env, "0"), tmp_path) is None
    replacement = _ready_interpreter(pool, base_env)
    assert replacement != pid
    container = pool.take(_plan(base_env, "4"), tmp_path)
    assert container is not None and container.wait() == 4


def test_an_interpreter_that_does_not_answer_is_given_up_and_its_jobs_start_cold(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm, "SPAWN_TIMEOUT_SECONDS", 0.3)
    hanging = {**base_env, "WARM_PROBE_HANG": "1"}
    pid = _ready_interpreter(pool, hanging)
    assert pool.take(_plan(hanging, "0"), tmp_path) is None
    assert _gone(pid), "the stuck interpreter was not ended"
    assert pool.handed_out == 0


def test_only_the_per_job_batch_variables_are_left_out_of_the_start_environment() -> None:
    env = {"PATH": "/bin", "AWS_BATCH_JOB_ID": "x", "AWS_BATCH_CE_NAME": "ce", "AWS_REGION": "r"}
    assert environment_key(env) == (("AWS_REGION", "r"), ("PATH", "/bin"))
    assert module_args(_plan({}, "spec", module=LAUNCHER_MODULE), LAUNCHER_MODULE) == ["spec"]


def test_an_interpreter_prepared_from_an_environment_serves_the_first_job_of_that_environment(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    # What a cloud does at start when its client says launcher jobs will come: no job yet,
    # only the environment the jobs will have, their per-job Batch variables aside.
    pool.prepare(base_env)
    job_env = {**base_env, "AWS_BATCH_JOB_ID": "first", "AWS_BATCH_JOB_ATTEMPT": "1"}
    container = pool.take(_plan(job_env, "6"), tmp_path)
    assert container is not None, "the first job started cold"
    assert _output(container)["env"] == job_env
    assert container.wait() == 6
    # Another environment is not served by it.
    assert pool.take(_plan({**base_env, "JOB_SETTING": "other"}, "0"), tmp_path) is None
    assert pool.handed_out == 1
