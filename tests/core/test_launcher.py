"""The launcher with moto S3 in process: staging, the payload's exit code, redirections, and the
log and report uploaded also when the payload or the staging fails."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import tempfile
import threading
from typing import Any

import pytest

from snakemake_executor_awsbatch import launcher, staging
from snakemake_executor_awsbatch.jobstate import (
    EXIT_SPEC_UNREADABLE,
    EXIT_STAGE_IN_FAILED,
    EXIT_STAGE_OUT_FAILED,
)
from snakemake_executor_awsbatch.launcher import launch, main
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagedFile, StagingManifest


def _put_spec(s3: Any, bucket: str, spec: LaunchSpec) -> str:
    s3.put_object(Bucket=bucket, Key="t/spec.json", Body=spec.to_json().encode())
    return spec.staging.spec_uri


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _report(s3: Any, bucket: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(_get(s3, bucket, "t/report.json"))
    return report


def test_stages_runs_and_reports(s3: Any, bucket: str, tmp_path: Any, capfd: Any) -> None:
    s3.put_object(Bucket=bucket, Key="in/reads.txt", Body=b"ACGT\nTTGA\n")
    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/reads.txt", path="data/reads.txt"),),
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/count.txt", path="count.txt"),),
    )
    spec = LaunchSpec(
        staging=manifest,
        shell='wc -l < data/reads.txt > count.txt; echo "hello $GREETING"; echo oops >&2',
        env={"GREETING": "world"},
        workdir=str(tmp_path / "work"),
    )
    code = launch(_put_spec(s3, bucket, spec), client=s3)
    assert code == 0
    assert _get(s3, bucket, "out/count.txt").strip() == b"2"
    log = _get(s3, bucket, "t/log.txt").decode()
    assert "hello world" in log and "oops" in log
    assert "hello world" in capfd.readouterr().out  # streamed for CloudWatch too
    report = _report(s3, bucket)
    assert report["status"] == "succeeded" and report["exit_code"] == 0
    assert report["bytes_in"] == 10 and report["files_in"] == 1 and report["files_out"] == 1
    assert report["bytes_out"] == len(_get(s3, bucket, "out/count.txt"))
    assert report["peak_memory_mib"] > 0 and report["wall_seconds"] >= report["payload_seconds"]


def test_failing_payload_passes_its_code_and_still_reports(
    s3: Any, bucket: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/never.txt", path="never.txt"),),
    )
    spec = LaunchSpec(staging=manifest, command=("sh", "-c", "echo dying; exit 3"))
    assert launch(_put_spec(s3, bucket, spec), client=s3) == 3
    assert b"dying" in _get(s3, bucket, "t/log.txt")
    report = _report(s3, bucket)
    assert report["status"] == "payload_failed"
    assert (report["exit_code"], report["payload_exit_code"]) == (3, 3)
    assert list(tmp_path.iterdir()) == []  # the launcher's own work dir and log file are gone


def test_success_codes_and_redirections(s3: Any, bucket: str, tmp_path: Any) -> None:
    s3.put_object(Bucket=bucket, Key="in/x.txt", Body=b"b\na\n")
    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/x.txt", path="x.txt"),),
        outputs=(
            StagedFile(s3_uri=f"s3://{bucket}/out/sorted.txt", path="sorted.txt"),
            StagedFile(s3_uri=f"s3://{bucket}/out/err.txt", path="err.txt"),
        ),
    )
    spec = LaunchSpec(
        staging=manifest,
        command=("sh", "-c", "sort; echo warn >&2; exit 1"),
        stdin="x.txt",
        stdout="sorted.txt",
        stderr="err.txt",
        success_codes=(0, 1),
    )
    assert launch(_put_spec(s3, bucket, spec), client=s3) == 0
    assert _get(s3, bucket, "out/sorted.txt") == b"a\nb\n"
    assert _get(s3, bucket, "out/err.txt") == b"warn\n"
    assert _report(s3, bucket)["payload_exit_code"] == 1


def test_missing_input_gives_stage_in_code(s3: Any, bucket: str) -> None:
    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        inputs=(StagedFile(s3_uri=f"s3://{bucket}/in/missing.bam", path="m.bam"),),
    )
    spec = LaunchSpec(staging=manifest, command=("true",))
    assert launch(_put_spec(s3, bucket, spec), client=s3) == EXIT_STAGE_IN_FAILED
    report = _report(s3, bucket)
    assert report["status"] == "stage_in_failed"
    assert f"s3://{bucket}/in/missing.bam" in report["error"]
    assert b"missing.bam" in _get(s3, bucket, "t/log.txt")


def test_missing_output_gives_stage_out_code(s3: Any, bucket: str) -> None:
    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/r.vcf", path="r.vcf"),),
    )
    spec = LaunchSpec(staging=manifest, command=("true",))
    assert launch(_put_spec(s3, bucket, spec), client=s3) == EXIT_STAGE_OUT_FAILED
    assert "r.vcf was not created" in _report(s3, bucket)["error"]


def test_unreadable_spec(s3: Any, bucket: str) -> None:
    assert launch(f"s3://{bucket}/t/spec.json", client=s3) == EXIT_SPEC_UNREADABLE
    assert _report(s3, bucket)["status"] == "spec_unreadable"


def test_command_not_found_is_127(s3: Any, bucket: str) -> None:
    spec = LaunchSpec(
        staging=StagingManifest(prefix=f"s3://{bucket}/t"), command=("no-such-tool-xyz",)
    )
    assert launch(_put_spec(s3, bucket, spec), client=s3) == 127
    assert b"cannot start no-such-tool-xyz" in _get(s3, bucket, "t/log.txt")


@pytest.mark.parametrize("argv", [[], ["not-a-uri"], ["s3://a/b", "extra"]])
def test_bad_arguments(argv: list[str]) -> None:
    assert main(argv) == EXIT_SPEC_UNREADABLE


def test_exit_now_flushes_buffered_output_and_passes_the_code() -> None:
    code = (
        "import logging, sys\n"
        "from snakemake_executor_awsbatch.launcher import exit_now\n"
        "logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='%(message)s')\n"
        "print('to stdout')\n"
        "logging.getLogger('t').info('to the log')\n"
        "exit_now(7)\n"
        "print('never')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 7
    assert done.stdout == "to stdout\n"  # piped, so block-buffered until exit_now flushed it
    assert "to the log" in done.stderr


def test_outputs_go_up_wave_by_wave(
    s3: Any, bucket: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[list[str]] = []
    real_stage_out = staging.S3Stager.stage_out

    def recording(self: Any, files: Any, workdir: str) -> Any:
        batches.append([f.path for f in files])
        return real_stage_out(self, files, workdir)

    monkeypatch.setattr(staging.S3Stager, "stage_out", recording)

    def out(name: str, wave: int) -> StagedFile:
        return StagedFile(s3_uri=f"s3://{bucket}/out/{name}", path=name, wave=wave)

    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        outputs=(out("c.txt", 2), out("a.txt", 0), out("b1.txt", 1), out("b2.txt", 1)),
    )
    spec = LaunchSpec(
        staging=manifest,
        shell="echo a > a.txt; cp a.txt b1.txt; cp a.txt b2.txt; cat b1.txt b2.txt > c.txt",
        workdir=str(tmp_path / "work"),
    )
    assert LaunchSpec.from_json(spec.to_json()) == spec  # the wave survives the trip to S3
    assert launch(_put_spec(s3, bucket, spec), client=s3) == 0
    # each wave is one upload batch, after the one before it: a file never predates its inputs
    assert batches == [["a.txt"], ["b1.txt", "b2.txt"], ["c.txt"]]
    assert _get(s3, bucket, "out/c.txt") == b"a\na\n"


def test_log_files_go_up_beside_the_outputs_and_after_a_failure(
    s3: Any, bucket: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs_started = threading.Event()
    waits: list[bool] = []
    real_stage_out = staging.S3Stager.stage_out

    def recording(self: Any, files: Any, workdir: str) -> Any:
        if [f.path for f in files] == ["run.log"]:
            # Uploaded one after the other, the log would wait here for outputs never started.
            waits.append(outputs_started.wait(timeout=10))
        else:
            outputs_started.set()
        return real_stage_out(self, files, workdir)

    monkeypatch.setattr(staging.S3Stager, "stage_out", recording)
    manifest = StagingManifest(
        prefix=f"s3://{bucket}/t",
        outputs=(StagedFile(s3_uri=f"s3://{bucket}/out/r.txt", path="r.txt"),),
        logs=(StagedFile(s3_uri=f"s3://{bucket}/logs/run.log", path="run.log"),),
    )
    spec = LaunchSpec(staging=manifest, shell="echo r > r.txt; echo ran > run.log")
    assert launch(_put_spec(s3, bucket, spec), client=s3) == 0
    assert waits == [True]
    assert _get(s3, bucket, "out/r.txt") == b"r\n"
    assert _get(s3, bucket, "logs/run.log") == b"ran\n"
    report = _report(s3, bucket)
    assert report["files_out"] == 2

    # A failed payload's log still goes up; its outputs do not.
    outputs_started.set()
    failing = LaunchSpec(staging=manifest, shell="echo failed > run.log; exit 3")
    s3.delete_object(Bucket=bucket, Key="out/r.txt")
    assert launch(_put_spec(s3, bucket, failing), client=s3) == 3
    assert _get(s3, bucket, "logs/run.log") == b"failed\n"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="out/")


def test_the_client_a_warm_interpreter_made_serves_its_first_job_only(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []

    def counting_client(**_: Any) -> Any:
        made.append(s3)
        return s3

    monkeypatch.setattr(staging, "s3_client", counting_client)
    monkeypatch.setattr(launcher, "s3_client", counting_client)
    launcher.warm_up()  # as the warm interpreter does, before any job is forked from it
    assert len(made) == 1
    # The forked job runs the launcher module afresh, as warm_interpreter.become does.
    monkeypatch.delitem(sys.modules, "snakemake_executor_awsbatch.launcher")
    fresh = runpy.run_module("snakemake_executor_awsbatch.launcher", run_name="job", alter_sys=True)
    monkeypatch.setitem(fresh["launch"].__globals__, "s3_client", counting_client)
    spec = LaunchSpec(staging=StagingManifest(prefix=f"s3://{bucket}/t"), shell="true")
    assert fresh["launch"](_put_spec(s3, bucket, spec)) == 0
    assert len(made) == 1  # the job took the interpreter's client
    assert fresh["launch"](_put_spec(s3, bucket, spec)) == 0
    assert len(made) == 2  # a later job in the same process makes its own
    assert _report(s3, bucket)["status"] == "succeeded"
