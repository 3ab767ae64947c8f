"""Every response the Batch endpoint gives fits botocore's Batch output shapes: right field names,
right types, nothing unknown (checked with botocore's own validator run on the output shapes)."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from localcloud.helpers import client, register, wait
from snakemake_executor_awsbatch.localcloud import LocalCloud

MODEL = botocore.session.get_session().get_service_model("batch")


class RawBodies:
    """Keeps the raw JSON of each response: botocore's parser drops fields it does not know."""

    def __init__(self, batch: Any) -> None:
        self.last: dict[str, Any] = {}
        batch.meta.events.register("after-call.batch.*", self.keep)

    def keep(self, http_response: Any, model: Any, **_: Any) -> None:
        self.last[model.name] = json.loads(http_response.content or b"{}")


def check(raw: RawBodies, operation: str, response: dict[str, Any]) -> None:
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    body = raw.last[operation]
    shape = MODEL.operation_model(operation).output_shape
    assert shape is not None
    report = ParamValidator().validate(body, shape)
    # Batch's model marks JobDetail.startedAt required, yet Batch omits it until a job starts.
    problems = [
        line
        for line in report.generate_report().splitlines()
        if line
        and not (line.startswith("Missing required parameter in jobs[") and "startedAt" in line)
    ]
    assert not problems, problems


def test_responses_fit_the_batch_model(local_cloud: LocalCloud) -> None:
    batch = client(local_cloud, "batch")
    raw = RawBodies(batch)
    check(raw, "DescribeComputeEnvironments", batch.describe_compute_environments())
    check(raw, "DescribeJobQueues", batch.describe_job_queues())
    arn = register(
        batch,
        "shape",
        ["sh", "-c", "exit Ref::code"],
        parameters={"code": "0"},
        retryStrategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]},
        timeout={"attemptDurationSeconds": 60},
        tags={"k": "v"},
    )
    check(
        raw,
        "RegisterJobDefinition",
        batch.register_job_definition(
            jobDefinitionName="shape-multi",
            type="container",
            ecsProperties={
                "taskProperties": [
                    {
                        "containers": [
                            {
                                "name": "a",
                                "image": "x",
                                "command": ["true"],
                                "essential": True,
                                "resourceRequirements": [
                                    {"type": "VCPU", "value": "1"},
                                    {"type": "MEMORY", "value": "64"},
                                ],
                            }
                        ]
                    }
                ]
            },
        ),
    )
    check(raw, "DescribeJobDefinitions", batch.describe_job_definitions())
    queue = local_cloud.queue_name
    ok = batch.submit_job(jobName="ok", jobQueue=queue, jobDefinition=arn)
    check(raw, "SubmitJob", ok)
    bad = batch.submit_job(
        jobName="bad", jobQueue=queue, jobDefinition=arn, parameters={"code": "3"}
    )["jobId"]
    array = batch.submit_job(
        jobName="arr", jobQueue=queue, jobDefinition=arn, arrayProperties={"size": 2}
    )["jobId"]
    multi = batch.submit_job(jobName="multi", jobQueue=queue, jobDefinition="shape-multi")["jobId"]
    waiting = batch.submit_job(
        jobName="waiting", jobQueue=queue, jobDefinition=arn, dependsOn=[{"jobId": bad}]
    )["jobId"]
    huge = batch.submit_job(
        jobName="huge",
        jobQueue=queue,
        jobDefinition=arn,
        containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": "999"}]},
    )["jobId"]
    ids = [ok["jobId"], bad, array, f"{array}:1", multi, waiting, huge]
    check(raw, "DescribeJobs", batch.describe_jobs(jobs=ids))
    for job_id in ids[:6]:
        wait(batch, job_id)
    check(raw, "DescribeJobs", batch.describe_jobs(jobs=ids))
    for status in ("SUCCEEDED", "FAILED", "RUNNABLE"):
        check(raw, "ListJobs", batch.list_jobs(jobQueue=queue, jobStatus=status))
    check(raw, "ListJobs", batch.list_jobs(arrayJobId=array, jobStatus="SUCCEEDED"))
    check(raw, "TerminateJobs", batch.terminate_jobs(jobs=[huge, "unknown"], reason="done"))
    check(raw, "CancelJobs", batch.cancel_jobs(jobs=[huge], reason="done"))
    check(raw, "TerminateJob", batch.terminate_job(jobId=huge, reason="done"))
    check(raw, "DeregisterJobDefinition", batch.deregister_job_definition(jobDefinition=arn))
