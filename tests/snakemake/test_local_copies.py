"""Local copies of storage inputs are dropped when only remote jobs read them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from snakemake_executor_awsbatch.local_copies import drop_remote_only_copies


class FakeFile(str):
    """A storage input as Snakemake hands it over: its local copy's path, and a flag."""

    is_storage: bool

    def __new__(cls, path: Path, is_storage: bool = True) -> FakeFile:
        made = super().__new__(cls, str(path))
        made.is_storage = is_storage
        return made

    @property
    def file(self) -> str:
        return str(self)


def _reader(is_local: bool) -> SimpleNamespace:
    return SimpleNamespace(is_local=is_local)


def _job(inputs: list[FakeFile], readers: dict[str, list[Any]], **options: Any) -> Any:
    finished = options.get("finished", set())
    dag = SimpleNamespace(
        _storage_input_jobs=readers,
        finished=lambda job: id(job) in finished,
        workflow=SimpleNamespace(
            storage_settings=SimpleNamespace(keep_storage_local=options.get("keep", False))
        ),
    )
    return SimpleNamespace(dag=dag, input=inputs)


def _copies(tmp_path: Path, *names: str) -> list[FakeFile]:
    files = []
    for name in names:
        path = tmp_path / ".snakemake" / "storage" / "s3" / "bucket" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
        files.append(FakeFile(path))
    return files


def test_copies_read_only_by_remote_jobs_are_removed(tmp_path: Path) -> None:
    ref, bam = _copies(tmp_path, "ref.fa", "x.bam")
    job = _job([ref, bam], {ref: [_reader(False), _reader(False)], bam: [_reader(False)]})
    assert sorted(drop_remote_only_copies(job)) == sorted([ref.file, bam.file])
    assert not Path(ref.file).exists() and not Path(bam.file).exists()


def test_a_copy_an_unfinished_local_job_reads_is_kept(tmp_path: Path) -> None:
    ref, bam = _copies(tmp_path, "ref.fa", "x.bam")
    local_done, local_pending = _reader(True), _reader(True)
    job = _job(
        [ref, bam],
        {ref: [_reader(False), local_pending], bam: [_reader(False), local_done]},
        finished={id(local_done)},
    )
    assert drop_remote_only_copies(job) == [bam.file]
    assert Path(ref.file).exists()


def test_keep_storage_local_copies_keeps_everything(tmp_path: Path) -> None:
    (ref,) = _copies(tmp_path, "ref.fa")
    job = _job([ref], {ref: [_reader(False)]}, keep=True)
    assert drop_remote_only_copies(job) == []
    assert Path(ref.file).exists()


def test_plain_files_directories_and_missing_copies_are_left_alone(tmp_path: Path) -> None:
    plain = tmp_path / "data.fq"
    plain.write_text("reads")
    folder = tmp_path / ".snakemake" / "storage" / "s3" / "bucket" / "dir"
    folder.mkdir(parents=True)
    inputs = [
        FakeFile(plain, is_storage=False),
        FakeFile(folder),
        FakeFile(tmp_path / "never-retrieved.bam"),
    ]
    job = _job(inputs, {})
    assert drop_remote_only_copies(job) == []
    assert plain.exists() and folder.is_dir()


def test_a_dag_without_the_readers_map_keeps_every_copy(tmp_path: Path) -> None:
    (ref,) = _copies(tmp_path, "ref.fa")
    job = SimpleNamespace(dag=SimpleNamespace(), input=[ref])
    assert drop_remote_only_copies(job) == []
    assert Path(ref.file).exists()
