"""cwl-awsbatch on Fargate queues: the platform and role settings, Fargate-sized job
definitions that pass botocore's model, and the clear errors before any submission."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
from botocore.stub import Stubber

from cwl_runner.main import _backend, run
from cwl_runner.session import BatchBackend, RunnerSettings
from snakemake_executor_awsbatch.jobdef import job_definition_request
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.taskspec import Platform, TaskSpec

from .s3_helpers import Recorder, local_env  # noqa: F401  (fixture)

DATA = Path(__file__).parent / "data"
EXEC_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecution"
JOB_ROLE = "arn:aws:iam::123456789012:role/cwlJobs"
HALF_CORE = """cwlVersion: v1.2
class: CommandLineTool
requirements:
  ResourceRequirement: {coresMin: 0.5, ramMin: 1500}
baseCommand: [cat]
inputs:
  f: {type: File, inputBinding: {position: 1}}
stdout: out.txt
outputs:
  out: {type: stdout}
"""


class PreflightRecorder(Recorder):
    """Also keeps every spec handed to preflight (which may refuse it)."""

    def __init__(self, inner: BatchBackend) -> None:
        super().__init__(inner)
        self.preflighted: list[TaskSpec] = []

    def preflight(self, specs: list[TaskSpec]) -> None:
        self.preflighted.extend(specs)
        self.inner.preflight(specs)


def _run(args: list[str]) -> tuple[int, str, list[PreflightRecorder]]:
    made: list[PreflightRecorder] = []

    def factory(settings: RunnerSettings) -> BatchBackend:
        made.append(PreflightRecorder(_backend(settings)))
        return made[0]

    err = io.StringIO()
    code = run(args, io.StringIO(), err, factory)
    return code, err.getvalue(), made


def _job(tmp_path: Path) -> str:
    (tmp_path / "in.txt").write_text("hello\n")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"f": {"class": "File", "path": str(tmp_path / "in.txt")}}))
    return str(job)


def test_fargate_without_an_execution_role_stops_before_any_aws_call(tmp_path: Path) -> None:
    code, err, made = _run(
        [
            "--awsbatch-queue", "fargate-q", "--awsbatch-s3-root", "s3://bucket/cwl",
            "--awsbatch-platform", "FARGATE",
            str(DATA / "cat.cwl"), _job(tmp_path),
        ]
    )  # fmt: skip
    assert code == 1
    assert "Fargate jobs need an execution role; pass --awsbatch-execution-role-arn ARN." in err
    assert made == []  # no Batch client was even made


def test_an_unknown_platform_is_one_clear_error(tmp_path: Path) -> None:
    code, err, made = _run(
        ["--local", "--awsbatch-platform", "lambda", str(DATA / "cat.cwl"), _job(tmp_path)]
    )
    assert code == 1
    assert "platform 'lambda' is not known; use EC2 (also for spot) or FARGATE." in err
    assert made == []


def test_fargate_spec_is_sized_for_fargate_and_refused_on_an_ec2_queue(
    local_env: LocalCloud,  # noqa: F811
    tmp_path: Path,
) -> None:
    tool = tmp_path / "half.cwl"
    tool.write_text(HALF_CORE)
    code, err, made = _run(
        [
            "--local", "--awsbatch-no-call-cache",
            "--awsbatch-platform", "FARGATE",
            "--awsbatch-execution-role-arn", EXEC_ROLE, "--awsbatch-job-role-arn", JOB_ROLE,
            "--outdir", str(tmp_path / "out"), str(tool), _job(tmp_path),
        ]
    )  # fmt: skip
    # The local cloud's queues run EC2 only: refused before submission, naming both sides.
    assert code != 0
    assert "is a FARGATE job but the compute environments of queue" in err
    assert made and made[0].submitted == []
    spec = made[0].preflighted[0]
    assert spec.platform is Platform.FARGATE
    assert (spec.vcpus, spec.memory_mib) == (0.5, 2048)  # the smallest Fargate pair that fits
    assert (spec.execution_role_arn, spec.job_role_arn) == (EXEC_ROLE, JOB_ROLE)
    request = job_definition_request(spec)
    assert request["platformCapabilities"] == ["FARGATE"]
    properties = request["containerProperties"]
    assert properties["executionRoleArn"] == EXEC_ROLE and properties["jobRoleArn"] == JOB_ROLE
    client = boto3.client(
        "batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:  # botocore refuses anything off the Batch model
        stub.add_response(
            "register_job_definition",
            {"jobDefinitionName": "n", "jobDefinitionArn": "arn:x", "revision": 1},
            request,
        )
        client.register_job_definition(**request)


def test_ec2_stays_the_default_with_whole_vcpus(local_env: LocalCloud, tmp_path: Path) -> None:  # noqa: F811
    tool = tmp_path / "half.cwl"
    tool.write_text(HALF_CORE)
    code, err, made = _run(
        [
            "--local", "--awsbatch-no-call-cache", "--outdir", str(tmp_path / "out"),
            str(tool), _job(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0, err
    spec = made[0].submitted[0]
    assert spec.platform is Platform.EC2
    assert (spec.vcpus, spec.memory_mib) == (1.0, 1500)
    assert (tmp_path / "out" / "out.txt").read_text() == "hello\n"
