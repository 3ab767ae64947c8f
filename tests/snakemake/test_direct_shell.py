"""Which Snakemake jobs run their shell command directly, and the plan for those that do.

Jobs here are stand-ins with the attributes `direct_plan` reads; the end-to-end tests in
test_e2e_workflow.py and test_e2e_groups.py run real Snakemake jobs both ways and compare their
outputs. Group scripts are run here with bash in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from snakemake_executor_awsbatch.direct_group import Member, waves
from snakemake_executor_awsbatch.direct_shell import (
    MAX_SCRIPT_BYTES,
    THREAD_VARIABLES,
    DirectPlan,
    NotDirect,
    direct_plan,
    directory_inputs,
)
from snakemake_executor_awsbatch.run_totals import RunTotals

STORAGE = ".snakemake/storage/s3/bkt/run"


@dataclass
class FakeFile:
    name: str
    flags: dict[str, Any] = field(default_factory=lambda: {"storage_object": True})
    storage: bool = True

    def __str__(self) -> str:
        return f"{STORAGE}/{self.name}" if self.storage else self.name

    @property
    def is_storage(self) -> bool:
        return self.storage

    @property
    def is_directory(self) -> bool:
        return "directory" in self.flags

    @property
    def storage_object(self) -> Any:
        return SimpleNamespace(query=f"s3://bkt/run/{self.name}")


@dataclass(eq=False)
class FakeJob:
    input: list[FakeFile] = field(default_factory=lambda: [FakeFile("ref.fa"), FakeFile("r.fq")])
    output: list[FakeFile] = field(default_factory=lambda: [FakeFile("out/x.bam")])
    log: list[FakeFile] = field(default_factory=lambda: [FakeFile("logs/x.log")])
    shellcmd: str = "bwa mem ref.fa r.fq > out/x.bam 2> logs/x.log"
    threads: int = 4
    resources: dict[str, Any] = field(default_factory=dict)
    is_shell: bool = True
    conda_env_spec: Any = None
    container_img_url: Any = None
    env_modules: Any = None
    is_shadow: bool = False
    benchmark: Any = None
    is_checkpoint: bool = False
    name: str = "align"
    jobid: int = 1
    dag: Any = None

    def is_group(self) -> bool:
        return False


def _plan(job: FakeJob, **kwargs: Any) -> DirectPlan:
    plan = direct_plan(job, shell_prefix="set -euo pipefail; ", **kwargs)
    assert isinstance(plan, DirectPlan), plan
    return plan


def test_plan_maps_every_file_to_its_storage_object() -> None:
    plan = _plan(FakeJob())
    assert [(f.s3_uri, f.path) for f in plan.inputs] == [
        ("s3://bkt/run/ref.fa", f"{STORAGE}/ref.fa"),
        ("s3://bkt/run/r.fq", f"{STORAGE}/r.fq"),
    ]
    assert [(f.s3_uri, f.path, f.optional) for f in plan.outputs] == [
        ("s3://bkt/run/out/x.bam", f"{STORAGE}/out/x.bam", False)
    ]
    assert [(f.s3_uri, f.optional) for f in plan.logs] == [("s3://bkt/run/logs/x.log", True)]
    assert plan.env == {name: "4" for name in THREAD_VARIABLES}


def test_script_creates_parent_dirs_then_runs_with_snakemakes_prefix() -> None:
    plan = _plan(FakeJob())
    mkdir, command = plan.shell.split("\n")
    assert mkdir == f"mkdir -p {STORAGE}/logs {STORAGE}/out"
    assert command == "set -euo pipefail; bwa mem ref.fa r.fq > out/x.bam 2> logs/x.log"


def test_duplicate_inputs_are_staged_once_and_directory_inputs_are_marked() -> None:
    job = FakeJob(input=[FakeFile("a"), FakeFile("a"), FakeFile("d")])
    plan = _plan(job, directory_inputs={f"{STORAGE}/d"})
    assert [(f.path.rsplit("/", 1)[1], f.is_directory) for f in plan.inputs] == [
        ("a", False),
        ("d", True),
    ]


def test_local_inputs_are_read_in_place() -> None:
    job = FakeJob(input=[FakeFile("/mnt/efs/ref.fa", storage=False), FakeFile("r.fq")])
    assert [f.s3_uri for f in _plan(job).inputs] == ["s3://bkt/run/r.fq"]


def test_directory_and_temp_outputs_are_fine() -> None:
    flags = {"storage_object": True, "directory": True, "temp": True, "path_modified": True}
    plan = _plan(FakeJob(output=[FakeFile("idx", flags=flags)]))
    assert plan.outputs[0].is_directory


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"is_shell": False}, "not a shell: rule"),
        ({"conda_env_spec": "env.yaml"}, "conda"),
        ({"container_img_url": "docker://x"}, "container"),
        ({"env_modules": ["bwa"]}, "environment modules"),
        ({"is_shadow": True}, "shadow"),
        ({"benchmark": "b.tsv"}, "benchmark"),
        ({"resources": {"awsbatch_direct_shell": 0}}, "awsbatch_direct_shell=0"),
        ({"output": [FakeFile("t", flags={"storage_object": 1, "touch": 1})]}, "flagged touch"),
        ({"output": [FakeFile("p", flags={"storage_object": 1, "pipe": 1})]}, "flagged pipe"),
        ({"output": [FakeFile("a[1].txt")]}, "glob characters"),
        ({"output": [FakeFile("local.txt", storage=False)]}, "not in S3 storage"),
    ],
)
def test_jobs_that_need_snakemake_say_why(change: dict[str, Any], reason: str) -> None:
    job = FakeJob(**change)
    plan = direct_plan(job, shell_prefix="")
    assert isinstance(plan, NotDirect)
    assert reason in plan.reason


def test_run_totals_sum_reports_and_count_missing_ones(tmp_path: Any) -> None:
    totals = RunTotals()
    totals.add({"bytes_in": 2**20, "bytes_out": 10, "files_in": 2, "payload_seconds": 1.5}, True)
    totals.add({"bytes_in": 2**20, "files_out": 1, "stage_out_seconds": 0.5}, False)
    totals.add(None, True)
    assert (totals.jobs, totals.direct_shell_jobs, totals.reports_missing) == (3, 2, 1)
    assert (totals.bytes_in, totals.bytes_out, totals.files_in, totals.files_out) == (
        2 * 2**20,
        10,
        2,
        1,
    )
    assert "2.0 MiB in (2 files)" in totals.describe()
    assert "storage plugin" in totals.describe()  # one job ran Snakemake: its bytes are not here
    written = totals.write(tmp_path / "run.json")
    assert '"bytes_in": 2097152' in written.read_text()


# ---- group jobs ---------------------------------------------------------------------------------

BASH = shutil.which("bash") or "/bin/bash"


@dataclass(eq=False)
class FakeGroup:
    toposorted: list[list[FakeJob]]
    dag: Any = None
    resources: dict[str, Any] = field(default_factory=dict)

    def is_group(self) -> bool:
        return True


@dataclass
class FakeDag:
    dependencies: dict[FakeJob, dict[FakeJob, set[str]]] = field(default_factory=dict)
    needed_outside: set[str] = field(default_factory=set)
    targetfiles: set[str] = field(default_factory=set)
    notemp: bool = False

    @property
    def workflow(self) -> Any:
        return SimpleNamespace(storage_settings=SimpleNamespace(notemp=self.notemp))

    def is_needed_tempfile(
        self, job: FakeJob, tempfile: FakeFile, outside_of_group_job: Any
    ) -> bool:
        # Snakemake's answer, given here: does a job outside the group still read the file?
        assert outside_of_group_job is not None
        return str(tempfile) in self.needed_outside


def _member(name: str, jobid: int, command: str = "", **kwargs: Any) -> FakeJob:
    defaults: dict[str, Any] = {"input": [], "output": [FakeFile(f"{name}.txt")], "log": []}
    return FakeJob(name=name, jobid=jobid, shellcmd=command, **{**defaults, **kwargs})


def _group_plan(group: FakeGroup, prefix: str = "set -euo pipefail; ") -> DirectPlan:
    plan = direct_plan(group, shell_prefix=prefix)
    assert isinstance(plan, DirectPlan), plan
    return plan


def _run(plan: DirectPlan, workdir: Path) -> subprocess.CompletedProcess[str]:
    # As the launcher runs it: the whole script as one `bash -c` argument.
    return subprocess.run(
        [BASH, "-c", plan.shell], cwd=workdir, capture_output=True, text=True, timeout=60
    )


def _plain(path: str) -> str:
    return path.removeprefix(f"{STORAGE}/")


def _snakemake_prefix() -> str:
    from snakemake.shell import shell

    return str(shell._get_process_prefix("bash"))


def test_group_stages_only_inputs_no_member_makes() -> None:
    sort = _member(
        "sort",
        1,
        input=[FakeFile("r.fq"), FakeFile("ref.fa")],
        output=[FakeFile("sorted.txt", flags={"storage_object": 1, "temp": 1})],
    )
    count = _member(
        "count",
        2,
        input=[FakeFile("sorted.txt"), FakeFile("ref.fa")],
        log=[FakeFile("logs/count.log")],
    )
    head = _member(
        "head",
        3,
        input=[FakeFile("sorted.txt"), FakeFile("/mnt/efs/genome.fa", storage=False)],
    )
    plan = _group_plan(FakeGroup([[sort], [head, count]]))
    assert [_plain(f.path) for f in plan.inputs] == ["r.fq", "ref.fa"]
    # every member's outputs: with no DAG to ask, even the temp one the group reads itself
    assert [(_plain(f.path), f.optional) for f in plan.outputs] == [
        ("sorted.txt", False),
        ("count.txt", False),
        ("head.txt", False),
    ]
    assert [(_plain(f.path), f.optional) for f in plan.logs] == [("logs/count.log", True)]
    assert plan.env == {}  # each member sets its own thread variables in the script
    # outputs go up level by level, so none is older in S3 than a file it was made from
    assert [f.wave for f in plan.outputs] == [0, 1, 1]


def _temp(name: str) -> FakeFile:
    return FakeFile(name, flags={"storage_object": 1, "temp": 1})


ALL = ["inner.tmp", "shared.tmp", "final.txt"]


@pytest.mark.parametrize(
    ("dag", "checkpoint", "uploaded"),
    [
        (None, False, ALL),
        (FakeDag(), False, ["final.txt"]),
        (FakeDag(needed_outside={f"{STORAGE}/shared.tmp"}), False, ["shared.tmp", "final.txt"]),
        (FakeDag(targetfiles={f"{STORAGE}/inner.tmp"}), False, ["inner.tmp", "final.txt"]),
        (FakeDag(notemp=True), False, ALL),
        (FakeDag(), True, ALL),
    ],
    ids=["no-dag", "internal", "needed-outside", "target", "notemp", "checkpoint"],
)
def test_temp_files_only_the_group_needs_stay_in_the_job(
    dag: FakeDag | None, checkpoint: bool, uploaded: list[str]
) -> None:
    make = _member(
        "make",
        1,
        input=[FakeFile("r.fq")],
        output=[_temp("inner.tmp"), _temp("shared.tmp")],
        is_checkpoint=checkpoint,
    )
    use = _member("use", 2, input=[_temp("inner.tmp")], output=[FakeFile("final.txt")])
    plan = _group_plan(FakeGroup([[make], [use]], dag=dag))
    assert [_plain(f.path) for f in plan.outputs] == uploaded
    assert [_plain(f.path) for f in plan.inputs] == ["r.fq"]  # made inside: never staged in


def test_a_member_that_needs_snakemake_keeps_the_group_on_snakemake() -> None:
    fine = _member("sort", 1, "sort x > y")
    scripted = _member("plot", 7, is_shell=False)
    plan = direct_plan(FakeGroup([[fine], [scripted]]), shell_prefix="")
    assert isinstance(plan, NotDirect)
    assert "rule plot (jobid 7)" in plan.reason
    assert "not a shell: rule" in plan.reason


def test_a_group_with_a_pipe_stays_on_snakemake() -> None:
    pipe = FakeFile("stream", flags={"storage_object": 1, "pipe": 1})
    writer = _member("writer", 1, "seq 3 > stream", output=[pipe])
    reader = _member("reader", 2, "cat stream > out", input=[FakeFile("stream")])
    plan = direct_plan(FakeGroup([[writer, reader]]), shell_prefix="")
    assert isinstance(plan, NotDirect)
    assert "rule writer (jobid 1)" in plan.reason
    assert "flagged pipe" in plan.reason


def test_directory_inputs_of_single_and_group_jobs() -> None:
    outside = _member("index", 1, output=[FakeFile("idx", flags={"directory": True})])
    inside = _member("unpack", 2, output=[FakeFile("tree", flags={"directory": True})])
    plain = _member("fetch", 3, output=[FakeFile("reads.fq")])
    reader = _member("align", 4, input=[FakeFile("idx"), FakeFile("tree"), FakeFile("reads.fq")])
    producers = {
        outside: {f"{STORAGE}/idx"},
        inside: {f"{STORAGE}/tree"},
        plain: {f"{STORAGE}/reads.fq"},
    }
    dag = FakeDag(dependencies={inside: {}, reader: producers})
    reader.dag = dag
    assert directory_inputs(reader) == {f"{STORAGE}/idx", f"{STORAGE}/tree"}
    group = FakeGroup([[inside], [reader]], dag=dag)
    # `tree` is made inside the group, so it is not staged at all; `idx` comes from outside
    assert directory_inputs(group) == {f"{STORAGE}/idx"}
    plan = _group_plan(group)
    assert [(_plain(f.path), f.is_directory) for f in plan.inputs] == [
        ("idx", True),
        ("reads.fq", False),
    ]


def test_members_run_level_by_level_in_parallel_with_their_own_threads(tmp_path: Path) -> None:
    first = _member("first", 1, f"echo one > {STORAGE}/first.txt")
    # The two members of level 1 each wait for the other to have started: they finish only
    # when they run at the same time (run one after the other, the first gives up with 9).
    rendezvous = (
        "touch {me}.started; n=0; until [ -e {other}.started ]; do "
        "n=$((n+1)); [ $n -lt 200 ] || exit 9; sleep 0.05; done; "
        f"cat {STORAGE}/first.txt > {STORAGE}/deep/{{me}}/t.txt; "
        f"echo $OMP_NUM_THREADS $MKL_NUM_THREADS >> {STORAGE}/deep/{{me}}/t.txt"
    )
    left = _member(
        "left",
        3,
        rendezvous.format(me="left", other="right"),
        threads=2,
        output=[FakeFile("deep/left/t.txt")],
    )
    right = _member(
        "right",
        2,
        rendezvous.format(me="right", other="left"),
        threads=5,
        output=[FakeFile("deep/right/t.txt")],
        log=[FakeFile("logs/right.log")],
    )
    # Snakemake sizes the group for its widest level: 2 + 5 vCPUs
    group = FakeGroup([[first], [left, right]], resources={"_cores": 7, "_nodes": 1})
    result = _run(_group_plan(group), tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / STORAGE / "deep/left/t.txt").read_text() == "one\n2 2\n"
    assert (tmp_path / STORAGE / "deep/right/t.txt").read_text() == "one\n5 5\n"
    assert (tmp_path / STORAGE / "logs").is_dir()  # a log's parent exists before its member runs


def test_members_that_do_not_fit_the_group_together_run_in_waves(tmp_path: Path) -> None:
    # As Snakemake sizes a group under `--resources mem_mb=1000`: the level's three members
    # need 1,500 MB together, so `late` must wait for the first two to finish.
    def member(name: str, jobid: int, mem_mb: int, command: str) -> FakeJob:
        return _member(name, jobid, command, threads=1, resources={"mem_mb": mem_mb})

    early = member("early", 1, 600, "sleep 0.3; touch early.done")
    late = member(
        "late", 2, 600, "[ -e early.done ] && [ -e small.done ] || exit 7; touch late.done"
    )
    small = member("small", 3, 300, "sleep 0.3; touch small.done")
    limits = {"_cores": 2, "mem_mb": 1000, "_nodes": 1, "runtime": 5, "tmpdir": "/tmp"}
    plan = _group_plan(FakeGroup([[early, late, small]], resources=limits))
    result = _run(plan, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "late.done").exists()


def _pool_group(*members: FakeJob, cores: int) -> FakeGroup:
    return FakeGroup([list(members)], resources={"_cores": cores, "_nodes": 1})


def _one_thread(name: str, jobid: int, command: str) -> FakeJob:
    return _member(name, jobid, command, threads=1)


def test_a_pool_starts_the_next_member_when_any_running_one_ends(tmp_path: Path) -> None:
    # Two vCPUs, three one-thread members: `third` must start as soon as `short` ends, while
    # `long` still runs (run in waves, [long, short] then [third], `long` gives up with 9).
    long = _one_thread(
        "long",
        1,
        "n=0; until [ -e third.started ]; do n=$((n+1)); [ $n -lt 100 ] || exit 9; sleep 0.05;"
        " done; touch long.txt",
    )
    short = _one_thread("short", 2, "touch short.txt")
    third = _one_thread("third", 3, "touch third.started third.txt")
    plan = _group_plan(_pool_group(long, short, third, cores=2))
    assert "_awsbatch_pool" in plan.shell
    result = _run(plan, tmp_path)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in tmp_path.glob("*.txt")} == {"long.txt", "short.txt", "third.txt"}


def test_a_pool_never_runs_more_than_the_group_holds(tmp_path: Path) -> None:
    # Each member counts the members running beside it (a marker file each) and fails with 8
    # when it sees more than the group's two vCPUs allow.
    count = (
        "touch {me}.run; sleep 0.2; shopt -s nullglob; runs=(*.run); n=${{#runs[@]}};"
        " rm {me}.run; [ $n -le 2 ] || exit 8"
    )
    members = [_one_thread(f"m{i}", i, count.format(me=f"m{i}")) for i in range(1, 6)]
    result = _run(_group_plan(_pool_group(*members, cores=2)), tmp_path)
    assert result.returncode == 0, result.stderr


def test_after_a_failure_a_pool_starts_nothing_and_waits_for_the_running_members(
    tmp_path: Path,
) -> None:
    failing = _one_thread("broken", 1, "exit 4")
    slow = _one_thread("slow", 2, "sleep 0.5; echo done > slow.txt")
    later = _one_thread("later", 3, "touch later.txt")
    after = _one_thread("after", 4, "touch after.txt")
    group = FakeGroup([[failing, slow, later], [after]], resources={"_cores": 2, "_nodes": 1})
    result = _run(_group_plan(group), tmp_path)
    assert result.returncode == 4
    assert (tmp_path / "slow.txt").read_text() == "done\n"  # the running member finished
    assert not (tmp_path / "later.txt").exists()  # no member started after the failure
    assert not (tmp_path / "after.txt").exists()  # nor the next level
    assert "rule broken (jobid 1) failed with exit code 4" in result.stderr


def test_a_pool_of_many_short_members_reports_every_exit(tmp_path: Path) -> None:
    # Members that end while others start: bash drops an ended job from its job table when it
    # starts the next one, so a pool that relied on `wait -n` alone lost them (and hung, or
    # reported exit 127). Run it a few times: the timing differs each time.
    members = [_one_thread(f"m{i}", i, f"touch m{i}.txt") for i in range(1, 13)]
    failing = _one_thread("broken", 13, "sleep 0.05; exit 5")
    for attempt in range(5):
        workdir = tmp_path / str(attempt)
        workdir.mkdir()
        result = _run(_group_plan(_pool_group(*members, cores=3)), workdir)
        assert result.returncode == 0, result.stderr
        assert len(list(workdir.glob("m*.txt"))) == 12
        result = _run(_group_plan(_pool_group(*members[:6], failing, cores=3)), workdir)
        assert result.returncode == 5, result.stderr
        assert result.stderr.count("failed with exit code") == 1, result.stderr


def test_waves_pack_first_fit_and_run_an_oversized_member_alone() -> None:
    def needs(label: str, **amounts: int) -> Member:
        return Member(label=label, command="", needs=amounts)

    members = [
        needs("a", _cores=2, mem_mb=500),
        needs("b", _cores=1, mem_mb=900),
        needs("c", _cores=1, mem_mb=400),
        needs("huge", _cores=8),
        needs("d", _cores=1),
    ]
    packed = waves(members, {"_cores": 3, "mem_mb": 1000})
    assert [[m.label for m in wave] for wave in packed] == [["a", "c"], ["b", "d"], ["huge"]]
    assert [[m.label for m in wave] for wave in waves(members, {})] == [
        ["a", "b", "c", "huge", "d"]
    ]


def test_a_failing_member_fails_the_level_after_the_other_member_finished(
    tmp_path: Path,
) -> None:
    first = _member("first", 1, "touch first.txt")
    failing = _member("broken", 2, "exit 3")
    slow = _member("slow", 3, "sleep 0.5; echo done > slow.txt")
    later = _member("later", 4, "touch later.txt")
    result = _run(_group_plan(FakeGroup([[first], [failing, slow], [later]])), tmp_path)
    assert result.returncode == 3
    assert (tmp_path / "slow.txt").read_text() == "done\n"  # the level finished
    assert not (tmp_path / "later.txt").exists()  # the next level never started
    assert "rule broken (jobid 2) failed with exit code 3" in result.stderr
    assert "slow" not in result.stderr


def test_the_first_failure_in_level_order_gives_the_exit_code(tmp_path: Path) -> None:
    one = _member("one", 1, "sleep 0.3; exit 4")
    two = _member("two", 2, "exit 5")
    result = _run(_group_plan(FakeGroup([[two, one]])), tmp_path)
    assert result.returncode == 4
    assert "rule two (jobid 2) failed with exit code 5" in result.stderr


def test_snakemakes_prefix_applies_to_every_member(tmp_path: Path) -> None:
    fine = _member("fine", 1, "touch fine.txt")
    piped = _member("piped", 2, "false | cat; touch after.txt")
    result = _run(_group_plan(FakeGroup([[fine, piped]]), prefix=_snakemake_prefix()), tmp_path)
    assert result.returncode == 1
    assert (tmp_path / "fine.txt").exists()
    assert not (tmp_path / "after.txt").exists()


# A quoted heredoc with quotes, $, backquotes and backslashes, then a comment on the last line;
# and an unquoted heredoc whose terminator ends the command with no newline.
HEREDOC = (
    "cat > {out} <<'EOF'\n"
    'it\'s "quoted" $HOME `date` \\n\n'
    "EOF\n"
    "printf '%s\\n' \"a'b\" 'c\"d' >> {out} # a comment on the last line"
)
UNTERMINATED = "tr a-z A-Z > {out} <<EOF\nshout $((1+2))\nEOF"


def test_heredocs_comments_and_quotes_mean_what_they_mean_locally(tmp_path: Path) -> None:
    commands = [HEREDOC, UNTERMINATED]
    members = [_member(f"m{i}", i, c.format(out=f"m{i}.txt")) for i, c in enumerate(commands)]
    after = _member("after", 9, "cat m0.txt m1.txt > after.txt")
    group_dir, reference = tmp_path / "group", tmp_path / "reference"
    group_dir.mkdir()
    reference.mkdir()
    result = _run(_group_plan(FakeGroup([members, [after]]), prefix=_snakemake_prefix()), group_dir)
    assert result.returncode == 0, result.stderr
    for i, command in enumerate(commands):
        # the reference: the command as Snakemake's shell() runs it in a local run
        local = subprocess.run(
            [BASH, "-c", _snakemake_prefix() + command.format(out=f"m{i}.txt")],
            cwd=reference,
            capture_output=True,
            text=True,
            check=False,
        )
        assert local.returncode == 0, local.stderr
        assert (group_dir / f"m{i}.txt").read_text() == (reference / f"m{i}.txt").read_text()
    assert (group_dir / "m0.txt").read_text().startswith('it\'s "quoted" $HOME `date` \\n\n')
    assert (group_dir / "after.txt").read_text().endswith("a'b\nc\"d\nSHOUT 3\n")


def test_a_stopped_group_stops_its_running_members(tmp_path: Path) -> None:
    sleepers = [_member(f"s{i}", i, f"echo $$ > s{i}.pid; exec sleep 60") for i in (1, 2)]
    plan = _group_plan(FakeGroup([sleepers]))
    proc = subprocess.Popen([BASH, "-c", plan.shell], cwd=tmp_path, start_new_session=True)
    try:
        pids = [_wait_for_pid(tmp_path / f"s{i}.pid") for i in (1, 2)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        for pid in pids:
            assert _gone(pid), f"member process {pid} outlived its group"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_an_oversized_script_goes_the_snakemake_way() -> None:
    command = "echo " + "x" * MAX_SCRIPT_BYTES
    plan = direct_plan(FakeGroup([[_member("huge", 1, command)]]), shell_prefix="")
    assert isinstance(plan, NotDirect)
    assert "too long" in plan.reason
    assert isinstance(direct_plan(FakeJob(shellcmd=command), shell_prefix=""), NotDirect)


def test_a_large_group_of_small_jobs_still_runs_directly(tmp_path: Path) -> None:
    # e.g. --group-components packing 250 per-sample jobs with storage paths into one Batch job
    def sample(i: int) -> FakeJob:
        out = f"per_sample/s{i:03d}.txt"
        return _member(
            f"s{i:03d}", i, f"printf '%s\\n' {i} > {STORAGE}/{out}", output=[FakeFile(out)]
        )

    members = [sample(i) for i in range(250)]
    plan = direct_plan(FakeGroup([members]), shell_prefix=_snakemake_prefix())
    assert isinstance(plan, DirectPlan), plan
    assert len(plan.outputs) == 250
    result = _run(plan, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / STORAGE / "per_sample/s249.txt").read_text() == "249\n"


def _wait_for_pid(path: Path) -> int:
    for _ in range(400):
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def _gone(pid: int) -> bool:
    # An orphan may linger briefly as a zombie until init reaps it; that counts as gone.
    for _ in range(200):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False
