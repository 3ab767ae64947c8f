"""Which Snakemake jobs run their shell command directly, and the plan for those that do.

Jobs here are stand-ins with the attributes `direct_plan` reads; the end-to-end tests in
test_e2e_workflow.py run real Snakemake jobs both ways and compare their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from snakemake_executor_awsbatch.direct_shell import (
    THREAD_VARIABLES,
    DirectPlan,
    NotDirect,
    direct_plan,
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


@dataclass
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
    group: bool = False

    def is_group(self) -> bool:
        return self.group


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
        ({"group": True}, "group job"),
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
