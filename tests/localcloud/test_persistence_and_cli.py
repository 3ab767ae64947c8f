"""A restart with the same state dir loses nothing; `awsbatch local` serves in the foreground."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from localcloud.helpers import client, log_lines, register, wait
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.localcloud import LocalCloud


def test_restart_keeps_s3_job_definitions_jobs_and_efs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    big = os.urandom(6 * 1024 * 1024)
    with LocalCloud(state_dir=state, vcpus=4, memory_mib=4096) as cloud:
        batch, s3 = client(cloud, "batch"), client(cloud, "s3")
        arn = register(batch, "kept", ["echo", "kept-output"])
        job_id = batch.submit_job(jobName="kept", jobQueue=cloud.queue_name, jobDefinition=arn)[
            "jobId"
        ]
        finished = wait(batch, job_id)
        s3.create_bucket(Bucket="localcloud-persist")
        s3.put_object(
            Bucket="localcloud-persist",
            Key="dir/a.txt",
            Body=b"alpha",
            ContentType="text/plain",
            Metadata={"origin": "test"},
        )
        s3.upload_fileobj(
            __import__("io").BytesIO(big),
            "localcloud-persist",
            "big.bin",
            Config=TransferConfig(multipart_threshold=5 * 2**20),
        )
        etag = s3.head_object(Bucket="localcloud-persist", Key="big.bin")["ETag"]
        fs_id, account = cloud.efs_file_system_id, cloud.account_id
        (cloud.efs_root(fs_id) / "ref.txt").write_text("ref")
        calls_before = len(cloud.api_calls_path.read_text().splitlines())
    with LocalCloud(state_dir=state, vcpus=4, memory_mib=4096) as cloud:
        batch, s3 = client(cloud, "batch"), client(cloud, "s3")
        assert cloud.efs_file_system_id == fs_id and cloud.account_id == account
        assert (cloud.efs_root(fs_id) / "ref.txt").read_text() == "ref"
        assert batch.describe_jobs(jobs=[job_id])["jobs"] == [finished]
        stream = finished["container"]["logStreamName"]
        assert log_lines(client(cloud, "logs"), stream) == ["kept-output"]
        listed = batch.list_jobs(jobQueue=cloud.queue_name, jobStatus="SUCCEEDED")
        assert [s["jobId"] for s in listed["jobSummaryList"]] == [job_id]
        obj = s3.get_object(Bucket="localcloud-persist", Key="dir/a.txt")
        assert obj["Body"].read() == b"alpha"
        assert obj["ContentType"] == "text/plain" and obj["Metadata"] == {"origin": "test"}
        head = s3.head_object(Bucket="localcloud-persist", Key="big.bin")
        assert head["ETag"] == etag and head["ContentLength"] == len(big)
        assert s3.get_object(Bucket="localcloud-persist", Key="big.bin")["Body"].read() == big
        assert register(batch, "kept", ["true"]).endswith(":2")
        new_job = batch.submit_job(
            jobName="after",
            jobQueue=cloud.queue_name,
            jobDefinition="kept:1",
            dependsOn=[{"jobId": job_id}],
        )
        assert wait(batch, new_job["jobId"])["status"] == "SUCCEEDED"
        efs = client(cloud, "efs").describe_file_systems()["FileSystems"]
        assert [fs["FileSystemId"] for fs in efs] == [fs_id]
        assert len(cloud.api_calls_path.read_text().splitlines()) > calls_before


def test_jobs_active_at_stop_are_recorded_failed(tmp_path: Path) -> None:
    with LocalCloud(state_dir=tmp_path, vcpus=2, memory_mib=1024) as cloud:
        batch = client(cloud, "batch")
        job_id = batch.submit_job(
            jobName="cut",
            jobQueue=cloud.queue_name,
            jobDefinition=register(batch, "cut", ["sleep", "60"]),
        )["jobId"]
        wait(batch, job_id, statuses=("RUNNING",))
    with LocalCloud(state_dir=tmp_path, vcpus=2, memory_mib=1024) as cloud:
        record = client(cloud, "batch").describe_jobs(jobs=[job_id])["jobs"][0]
        assert record["status"] == "FAILED"
        assert "stopped" in record["statusReason"]


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "snakemake_executor_awsbatch.cli",
        "local",
        "--state-dir",
        str(tmp_path),
        "--vcpus",
        "2",
        "--memory",
        "1024",
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("export CWL_AWSBATCH_LOCAL_EFS="):
                break
        text = "\n".join(lines)
        endpoint = re.search(r"export AWS_ENDPOINT_URL=(\S+)", text)
        assert endpoint, text
        assert "local-queue" in text and "fs-" in text and "local-ce" in text
        assert "local-queue-ondemand -> local-ce-ondemand (EC2)" in text
        # cwl-awsbatch --local reuses the cloud from the same export lines
        assert f"export CWL_AWSBATCH_LOCAL_ENDPOINT={endpoint.group(1)}" in text
        assert "export CWL_AWSBATCH_LOCAL_QUEUE=local-queue\n" in text
        batch = boto3.client(
            "batch",
            endpoint_url=endpoint.group(1),
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
        )
        assert batch.describe_job_queues()["jobQueues"][0]["jobQueueName"] == "local-queue"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert (tmp_path / "api-calls.jsonl").read_text().count("DescribeJobQueues") == 1


def test_cli_rejects_bad_chaos(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake_executor_awsbatch.cli",
            "local",
            "--state-dir",
            str(tmp_path),
            "--chaos",
            "spot=5",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "spot=5" in result.stderr


def test_port_in_use_fails_cleanly_and_frees_the_state_dir(tmp_path: Path) -> None:
    with LocalCloud(state_dir=tmp_path / "a", vcpus=1, memory_mib=256) as first:
        port = int(first.endpoint_url.rsplit(":", 1)[1])
        second = LocalCloud(state_dir=tmp_path / "b", port=port, vcpus=1, memory_mib=256)
        with pytest.raises(UserError, match=f"Port {port} "):
            second.start()
    with LocalCloud(state_dir=tmp_path / "b", vcpus=1, memory_mib=256) as third:
        assert client(third, "batch").describe_job_queues()["jobQueues"]
