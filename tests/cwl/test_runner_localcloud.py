"""cwl-awsbatch end to end on the local cloud: staging through S3, the call cache, bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from cwl_runner.main import LOCAL_BUCKET, _backend, run
from cwl_runner.session import BatchBackend, RunnerSettings
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.taskspec import TaskSpec

DATA = Path(__file__).with_name("data")
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with LocalCloud(state_dir=tmp_path_factory.mktemp("cloud")) as started:
        yield started


@pytest.fixture
def local_env(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    for key, value in cloud.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_ENDPOINT", cloud.endpoint_url)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_REGION", cloud.region)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_QUEUE", cloud.queue_name)
    monkeypatch.setenv("CWL_AWSBATCH_LOCAL_EFS", cloud.efs_file_system_id)
    return cloud


class Counting:
    """Wraps the real BatchSubmitter and counts submissions and preflights."""

    def __init__(self, inner: BatchBackend) -> None:
        self.inner = inner
        self.submitted: list[TaskSpec] = []
        self.preflights = 0

    def preflight(self, specs: Sequence[TaskSpec]) -> None:
        self.preflights += 1
        self.inner.preflight(specs)

    def submit(self, spec: TaskSpec) -> str:
        self.submitted.append(spec)
        return self.inner.submit(spec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _run(args: list[str]) -> tuple[int, dict[str, Any], str, Counting]:
    holder: list[Counting] = []

    def factory(settings: RunnerSettings) -> BatchBackend:
        holder.append(Counting(_backend(settings)))
        return holder[0]

    out, err = io.StringIO(), io.StringIO()
    code = run(["--local", *args], stdout=out, stderr=err, backend_factory=factory)
    text = out.getvalue()
    parsed = json.loads(text) if text.strip() else {}
    counting = holder[0] if holder else Counting(None)  # type: ignore[arg-type]
    return code, parsed, err.getvalue(), counting


def _job(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_file_in_stdout_out(local_env: LocalCloud, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hello batch\n")
    job = _job(tmp_path / "job.json", {"f": {"class": "File", "path": str(source)}})
    outdir = tmp_path / "out"
    code, result, err, counting = _run(["--outdir", str(outdir), str(DATA / "cat.cwl"), job])
    assert code == 0, err
    assert len(counting.submitted) == 1
    assert Path(result["out"]["path"]).read_text() == "hello batch\n"
    assert sorted(os.listdir(outdir)) == ["out.txt"]
    digest = hashlib.sha256(b"hello batch\n").hexdigest()
    staged = counting.submitted[0].launch.staging.inputs
    assert [i.s3_uri for i in staged] == [f"s3://{LOCAL_BUCKET}/cwl/cas/{digest}"]


def test_secondary_files_directories_initial_workdir(local_env: LocalCloud, tmp_path: Path) -> None:
    (tmp_path / "s.bam").write_bytes(b"BAM\x01")
    (tmp_path / "s.bam.bai").write_bytes(b"BAI")
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("b.fa", "a.fa"):
        (refs / name).write_text(f">{name}\n")
    (tmp_path / "label.txt").write_text("tumour\n")
    job = _job(
        tmp_path / "job.json",
        {
            "bam": {"class": "File", "path": str(tmp_path / "s.bam")},
            "refdir": {"class": "Directory", "path": str(refs)},
            "label": {"class": "File", "path": str(tmp_path / "label.txt")},
        },
    )
    outdir = tmp_path / "out"
    code, result, err, _ = _run(["--outdir", str(outdir), str(DATA / "staging.cwl"), job])
    assert code == 0, err
    result_dir = Path(result["result"]["path"])
    assert (result_dir / "listing.txt").read_text() == "a.fa\nb.fa\n"
    assert (result_dir / "note.txt").read_text() == "label=tumour"
    copy = result["copy"]
    assert Path(copy["path"]).read_bytes() == b"BAM\x01"
    assert [s["basename"] for s in copy["secondaryFiles"]] == ["copy.bam.bai"]
    assert Path(copy["secondaryFiles"][0]["path"]).read_bytes() == b"BAI"


def test_s3_input_used_in_place(local_env: LocalCloud, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=local_env.endpoint_url, region_name=local_env.region)
    s3.create_bucket(Bucket="cwl-inputs")
    s3.put_object(Bucket="cwl-inputs", Key="reads/r1.txt", Body=b"from s3\n")
    job = _job(
        tmp_path / "job.json", {"f": {"class": "File", "location": "s3://cwl-inputs/reads/r1.txt"}}
    )
    code, result, err, counting = _run(
        ["--outdir", str(tmp_path / "o"), str(DATA / "cat.cwl"), job]
    )
    assert code == 0, err
    assert Path(result["out"]["path"]).read_text() == "from s3\n"
    inputs = counting.submitted[0].launch.staging.inputs
    assert [i.s3_uri for i in inputs] == ["s3://cwl-inputs/reads/r1.txt"]


def test_call_cache_second_run_submits_nothing(local_env: LocalCloud, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("cache me\n")
    job = _job(tmp_path / "job.json", {"f": {"class": "File", "path": str(source)}})
    first = _run(["--outdir", str(tmp_path / "o1"), str(DATA / "cat.cwl"), job])
    second = _run(["--outdir", str(tmp_path / "o2"), str(DATA / "cat.cwl"), job])
    assert first[0] == 0 and second[0] == 0, second[2]
    assert len(first[3].submitted) == 1
    assert second[3].submitted == []
    assert Path(second[1]["out"]["path"]).read_text() == "cache me\n"
    source.write_text("changed\n")
    third = _run(["--outdir", str(tmp_path / "o3"), str(DATA / "cat.cwl"), job])
    assert len(third[3].submitted) == 1
    assert Path(third[1]["out"]["path"]).read_text() == "changed\n"


def test_invalid_document_is_rejected_before_submission(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    code, _, err, counting = _run(["--outdir", str(tmp_path), str(DATA / "bad.cwl")])
    assert code == 1
    assert "NotAType" in err
    assert counting.submitted == []


def test_missing_input_file_is_rejected_before_submission(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    job = _job(tmp_path / "job.json", {"f": {"class": "File", "path": str(tmp_path / "nope")}})
    code, _, err, counting = _run(["--outdir", str(tmp_path / "o"), str(DATA / "cat.cwl"), job])
    assert code == 1
    assert "nope" in err
    assert counting.submitted == []


def test_unsatisfiable_cores_are_rejected_before_submission(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    code, _, err, counting = _run(["--outdir", str(tmp_path / "o"), str(DATA / "manycores.cwl")])
    assert code == 1
    assert counting.preflights == 1 and counting.submitted == []
    assert "4096 vCPUs" in err, err


def test_efs_reference_is_mounted_not_copied(local_env: LocalCloud, tmp_path: Path) -> None:
    fs_id = local_env.efs_file_system_id
    refs = local_env.efs_root(fs_id) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "chrM.fa").write_text(">chrM\nGATC\n")
    job = _job(
        tmp_path / "job.json", {"f": {"class": "File", "location": f"efs://{fs_id}/refs/chrM.fa"}}
    )
    code, result, err, counting = _run(
        ["--outdir", str(tmp_path / "o"), str(DATA / "cat.cwl"), job]
    )
    assert code == 0, err
    assert "not recognized" not in err  # schema-salad knows efs:// (and s3://) as schemes
    assert Path(result["out"]["path"]).read_text() == ">chrM\nGATC\n"
    spec = counting.submitted[0]
    assert spec.launch.staging.inputs == ()
    assert [(m.file_system_id, m.container_path, m.read_only) for m in spec.mounts] == [
        (fs_id, f"/mnt/efs/{fs_id}", True)
    ]


def test_s3_input_in_missing_bucket_is_one_clear_error(
    local_env: LocalCloud, tmp_path: Path
) -> None:
    job = _job(
        tmp_path / "job.json", {"f": {"class": "File", "location": "s3://no-such-bucket-x/r.fq"}}
    )
    code, _, err, counting = _run(["--outdir", str(tmp_path / "o"), str(DATA / "cat.cwl"), job])
    assert code == 1
    assert "s3://no-such-bucket-x/r.fq does not exist or is not readable" in err
    assert "Traceback" not in err
    assert counting.submitted == []
