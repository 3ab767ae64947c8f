"""Interpreters started ahead of their jobs (localcloud.warm): a job handed to one sees exactly
what a cold start would give it, and only jobs whose start they could not change use them."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snakemake_executor_awsbatch.localcloud.model import Bind, ContainerPlan
from snakemake_executor_awsbatch.localcloud.warm import (
    LAUNCHER_MODULE,
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
    pool.replenish(_plan(env))
    marker = Path(env["WARM_PROBE_MARKER"])
    deadline = time.monotonic() + 20
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the interpreter never ran warm_up"
        time.sleep(0.02)
    return int(marker.read_text())


def test_a_job_handed_to_a_warm_interpreter_sees_what_a_cold_start_gives(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    # The interpreter loaded the module (and ran its warm_up) before any job existed.
    warm_pid = _ready_interpreter(pool, base_env)
    job_env = {**base_env, "AWS_BATCH_JOB_ID": "job-1", "AWS_BATCH_JOB_ATTEMPT": "1"}
    workdir = tmp_path / "job"
    workdir.mkdir()
    proc = pool.take(_plan(job_env, "3", "s3://bucket/spec.json"), workdir)
    assert proc is not None
    assert proc.stdout is not None
    # Its own session and process group, as a cold container's (still unreaped here).
    assert os.getpgid(proc.pid) == proc.pid and os.getsid(proc.pid) == proc.pid
    seen = json.loads(proc.stdout.read())
    assert proc.wait() == 3
    assert seen["pid"] == warm_pid
    assert seen["cwd"] == str(workdir)
    assert seen["path0"] == str(workdir)
    assert seen["argv"] == ["3", "s3://bucket/spec.json"]
    assert seen["env"] == job_env
    assert seen["stdin"] == ""
    assert seen["name"] == "__main__"
    assert pool.handed_out == 1


def test_another_start_environment_starts_cold_and_replaces_the_idle_interpreter(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    first_pid = _ready_interpreter(pool, base_env)
    other = {**base_env, "PYTHONHASHSEED": "7"}
    assert pool.take(_plan(other, "0"), tmp_path) is None
    pool.replenish(_plan(other, "0"))
    # The interpreter started for the first environment is gone.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{first_pid}").exists():
        assert time.monotonic() < deadline, "the stale interpreter was not ended"
        time.sleep(0.02)
    proc = pool.take(_plan(other, "0"), tmp_path)
    assert proc is not None and proc.stdout is not None
    assert json.loads(proc.stdout.read())["env"]["PYTHONHASHSEED"] == "7"
    assert proc.wait() == 0


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


def test_stop_ends_idle_interpreters_and_starts_no_more(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    pid = _ready_interpreter(pool, base_env)
    pool.stop()
    assert not Path(f"/proc/{pid}").exists()
    pool.replenish(_plan(base_env))
    assert pool.take(_plan(base_env, "0"), tmp_path) is None


def test_an_interpreter_that_died_while_idle_is_passed_over(
    pool: WarmPool, base_env: dict[str, str], tmp_path: Path
) -> None:
    os.kill(_ready_interpreter(pool, base_env), 9)
    time.sleep(0.1)
    assert pool.take(_plan(base_env, "0"), tmp_path) is None


def test_only_the_per_job_batch_variables_are_left_out_of_the_start_environment() -> None:
    env = {"PATH": "/bin", "AWS_BATCH_JOB_ID": "x", "AWS_BATCH_CE_NAME": "ce", "AWS_REGION": "r"}
    assert environment_key(env) == (("AWS_REGION", "r"), ("PATH", "/bin"))
    assert module_args(_plan({}, "spec", module=LAUNCHER_MODULE), LAUNCHER_MODULE) == ["spec"]
