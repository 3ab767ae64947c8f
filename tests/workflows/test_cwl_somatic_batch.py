"""The somatic CWL workflow through `cwl-awsbatch --local`: every CommandLineTool one Batch job on
the local cloud, files staged through S3, the reference either indexed by the workflow or read
from EFS; the calls are scored against the planted truth and compared with plain cwltool."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pysam
import pytest
from wf_helpers import REPO, file_job, records, run_cwltool

from cwl_runner.main import _backend, run
from cwl_runner.session import BatchBackend, RunnerSettings
from snakemake_executor_awsbatch.localcloud import LocalCloud
from snakemake_executor_awsbatch.taskspec import TaskSpec
from workflows.tools.compare import compare_vcfs

pytestmark = pytest.mark.e2e

WORKFLOW = REPO / "workflows/somatic/cwl/somatic.cwl"
PAIR = "tumor_vs_normal"
SCATTER = 2
# fastp, bwa mem, markdup and QC per sample (8), split regions, one candidates job per chunk,
# gather, classify; plus the index job when the workflow builds the indexes itself.
JOBS_WITH_EFS_REFERENCE = 8 + 1 + SCATTER + 2
INDEX_FILES = ("", ".fai", ".amb", ".ann", ".bwt", ".pac", ".sa")


class _Recording:
    """The real Batch submitter, recording every task it is asked to submit."""

    def __init__(self, inner: BatchBackend) -> None:
        self.inner = inner
        self.submitted: list[TaskSpec] = []

    def preflight(self, specs: Sequence[TaskSpec]) -> None:
        """Check on the real submitter."""
        self.inner.preflight(specs)

    def submit(self, spec: TaskSpec) -> str:
        """Record, then submit for real."""
        self.submitted.append(spec)
        return self.inner.submit(spec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass(frozen=True)
class BatchRun:
    """One cwl-awsbatch run: its --outdir, output object and the tasks it submitted."""

    outdir: Path
    outputs: dict[str, Any]
    submitted: list[TaskSpec]

    @property
    def somatic_vcf(self) -> Path:
        """The classified VCF brought back to --outdir."""
        return Path(self.outputs["somatic_vcf"]["path"])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """One local cloud for this module, its clients' environment set; the tools (and the
    classifier's `python3`) come from this interpreter's environment, as in the image."""
    with (
        LocalCloud(state_dir=tmp_path_factory.mktemp("cloud")) as started,
        pytest.MonkeyPatch.context() as env,
    ):
        for key, value in started.client_env().items():
            env.setenv(key, value)
        env.setenv("CWL_AWSBATCH_LOCAL_ENDPOINT", started.endpoint_url)
        env.setenv("CWL_AWSBATCH_LOCAL_REGION", started.region)
        env.setenv("CWL_AWSBATCH_LOCAL_QUEUE", started.queue_name)
        env.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        yield started


def _reads_job(sim_dir: Path) -> dict[str, object]:
    reads = sim_dir / "reads"
    job: dict[str, object] = {"pair": PAIR, "scatter": SCATTER}
    for sample in ("tumor", "normal"):
        for mate in (1, 2):
            job[f"{sample}_fq{mate}"] = file_job(reads / f"{sample}_R{mate}.fastq.gz")
    return job


def _invoke(job: dict[str, object], outdir: Path) -> tuple[int, str, str, list[TaskSpec]]:
    """`cwl-awsbatch --local` in this process (so its submissions can be observed): exit code,
    stdout, stderr and the tasks submitted."""
    outdir.mkdir(parents=True)
    job_path = outdir.with_suffix(".job.json")
    job_path.write_text(json.dumps(job))
    holder: list[_Recording] = []

    def factory(settings: RunnerSettings) -> BatchBackend:
        holder.append(_Recording(_backend(settings)))
        return holder[0]

    out, err = io.StringIO(), io.StringIO()
    # No call cache: the runs here share one cloud, and each must submit all its jobs.
    argv = ["--local", "--awsbatch-no-call-cache", "--outdir", str(outdir)]
    code = run(
        [*argv, str(WORKFLOW), str(job_path)], stdout=out, stderr=err, backend_factory=factory
    )
    return code, out.getvalue(), err.getvalue(), holder[0].submitted if holder else []


def _run_batch(job: dict[str, object], outdir: Path) -> BatchRun:
    """A run that must succeed."""
    code, out, err, submitted = _invoke(job, outdir)
    assert code == 0, err[-4000:]
    return BatchRun(outdir, json.loads(out), submitted)


@pytest.fixture(scope="module")
def built_index_run(
    cloud: LocalCloud, sim_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> BatchRun:
    """The workflow given a plain FASTA: it builds the indexes in a Batch job of its own."""
    job = _reads_job(sim_dir) | {"reference": file_job(sim_dir / "reference.fa")}
    return _run_batch(job, tmp_path_factory.mktemp("somatic-batch") / "out")


def test_every_tool_runs_as_one_batch_job(built_index_run: BatchRun) -> None:
    assert len(built_index_run.submitted) == JOBS_WITH_EFS_REFERENCE + 1
    # Only the final outputs (with their indexes) come back to --outdir, not intermediates.
    finals = [
        "somatic.vcf.gz",
        "somatic.vcf.gz.tbi",
        "candidates.vcf.gz",
        "candidates.vcf.gz.tbi",
        *(f"{s}.{kind}" for s in ("tumor", "normal") for kind in ("bam", "bam.bai")),
        *(f"{s}.flagstat.txt" for s in ("tumor", "normal")),
        *(f"{s}.mosdepth.summary.txt" for s in ("tumor", "normal")),
    ]
    assert sorted(p.name for p in built_index_run.outdir.iterdir()) == sorted(
        f"{PAIR}.{name}" for name in finals
    )


def test_batch_run_finds_the_planted_somatic_variants(
    built_index_run: BatchRun, sim_dir: Path
) -> None:
    acc = compare_vcfs(
        sim_dir / "truth/somatic.vcf.gz",
        built_index_run.somatic_vcf,
        sim_dir / "reference.fa",
        somatic=True,
    )
    snv, by_vaf = acc["snv"], acc["snv_recall_by_vaf"]
    assert isinstance(snv, dict) and isinstance(by_vaf, dict)
    assert snv["tp"] >= 5 and snv["precision"] >= 0.9 and snv["recall"] >= 0.6
    high = [r for vaf, r in by_vaf.items() if float(vaf) >= 0.2 and r is not None]
    assert high and min(high) >= 0.9
    # The normal's own (germline) variants are candidates too and must be rejected as such.
    with pysam.VariantFile(str(built_index_run.somatic_vcf)) as handle:
        assert list(handle.header.samples) == [f"{PAIR}.tumor", f"{PAIR}.normal"]
        filters = [list(rec.filter.keys()) for rec in handle]
    assert sum("NormalEvidence" in f for f in filters) >= 10


def test_batch_run_gives_the_same_calls_as_plain_cwltool(
    built_index_run: BatchRun, sim_dir: Path, tmp_path: Path
) -> None:
    job = _reads_job(sim_dir) | {"reference": file_job(sim_dir / "reference.fa")}
    plain = run_cwltool(WORKFLOW, job, tmp_path / "plain")
    plain_vcf = plain["somatic_vcf"]
    assert isinstance(plain_vcf, dict)
    batch_records = records(built_index_run.somatic_vcf)
    assert batch_records
    assert batch_records == records(Path(plain_vcf["path"]))


def test_reference_on_efs_is_mounted_not_built_or_staged(
    cloud: LocalCloud, built_index_run: BatchRun, sim_dir: Path, tmp_path: Path
) -> None:
    fs_id = cloud.efs_file_system_id
    refs = cloud.efs_root(fs_id) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    shutil.copy(sim_dir / "reference.fa", refs / "ce.fa")
    subprocess.run(["samtools", "faidx", str(refs / "ce.fa")], check=True)
    subprocess.run(["bwa", "index", str(refs / "ce.fa")], check=True, capture_output=True)
    reference = {"class": "File", "location": f"efs://{fs_id}/refs/ce.fa"}
    efs_run = _run_batch(_reads_job(sim_dir) | {"indexed_reference": reference}, tmp_path / "o")
    # No index job, and no job stages any of the reference's files: they are read on EFS.
    assert len(efs_run.submitted) == JOBS_WITH_EFS_REFERENCE
    staged = {
        Path(f_path).name
        for spec in efs_run.submitted
        for f in spec.launch.staging.inputs
        for f_path in (f.path, *(p for _, p in f.secondary))
    }
    assert staged and not staged & {f"ce.fa{ext}" for ext in INDEX_FILES}
    mounted = [s for s in efs_run.submitted if any(m.file_system_id == fs_id for m in s.mounts)]
    # bwa mem x2, split regions, candidates per chunk, gather, classify read the reference.
    assert len(mounted) == 2 + 1 + SCATTER + 1 + 1
    assert records(efs_run.somatic_vcf) == records(built_index_run.somatic_vcf)


def test_no_reference_fails_naming_both_ways_to_give_one(
    cloud: LocalCloud, sim_dir: Path, tmp_path: Path
) -> None:
    code, _, err, submitted = _invoke(_reads_job(sim_dir), tmp_path / "o")
    assert code == 1
    assert (
        "no reference genome is given; set the input reference (a FASTA) or indexed_reference"
        in err
    )
    # The index step is never submitted (fastp, which needs no reference, may have started).
    assert all("index" not in spec.name for spec in submitted)
