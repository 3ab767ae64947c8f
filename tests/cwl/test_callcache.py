"""The call-cache key ignores run-specific paths and follows content, command and resources."""

from __future__ import annotations

import dataclasses

from cwl_runner.callcache import CallCache
from cwl_runner.s3store import S3Store
from snakemake_executor_awsbatch.taskspec import LaunchSpec, StagedFile, StagingManifest, TaskSpec

ROOT = "s3://bucket/cwl"


def _spec(run_dir: str, input_sha: str, command: str = "cat", memory: int = 1024) -> TaskSpec:
    outdir, tmpdir, stage = f"{run_dir}/out", f"{run_dir}/tmp", f"{run_dir}/stg1/in.txt"
    launch = LaunchSpec(
        staging=StagingManifest(
            prefix=f"{ROOT}/runs/{run_dir.strip('/')}",
            inputs=(StagedFile(s3_uri=f"{ROOT}/cas/{input_sha}", path=stage),),
            outputs=(StagedFile(s3_uri=f"{ROOT}/runs/x/outdir", path=outdir, is_directory=True),),
        ),
        shell=f"mkdir -p {outdir} {tmpdir}\ncd {outdir}\nexec {command} {stage}",
        env={"HOME": outdir, "TMPDIR": tmpdir},
        workdir=outdir,
        stdout="out.txt",
    )
    return TaskSpec(name="cat", image="debian", launch=launch, queue="q", memory_mib=memory)


def _cache() -> CallCache:
    # Content ids of our own content-addressed uploads need no S3 call.
    return CallCache(S3Store(client=None, root_uri=ROOT), ROOT)


def test_same_step_in_fresh_paths_has_the_same_key() -> None:
    cache = _cache()
    assert cache.key_for(_spec("/tmp/run-a", "aa" * 32)) == cache.key_for(
        _spec("/tmp/run-b", "aa" * 32)
    )


def test_key_changes_with_content_command_and_resources() -> None:
    cache = _cache()
    base = cache.key_for(_spec("/tmp/run-a", "aa" * 32))
    assert cache.key_for(_spec("/tmp/run-a", "bb" * 32)) != base
    assert cache.key_for(_spec("/tmp/run-a", "aa" * 32, command="wc")) != base
    assert cache.key_for(_spec("/tmp/run-a", "aa" * 32, memory=2048)) != base
    other_image = dataclasses.replace(_spec("/tmp/run-a", "aa" * 32), image="ubuntu")
    assert cache.key_for(other_image) != base


def test_initial_workdir_entry_names_are_part_of_the_key() -> None:
    # Two tools that stage the same input into the working directory under different names
    # (iwd-passthrough3 and 4 of the conformance suite) must not share cached outputs.
    cache = _cache()

    def staged_as(name: str, run_dir: str) -> TaskSpec:
        spec = _spec(run_dir, "aa" * 32, command="true")
        entry = StagedFile(s3_uri=f"{ROOT}/cas/{'aa' * 32}", path=f"{run_dir}/out/{name}")
        staging = dataclasses.replace(spec.launch.staging, inputs=(entry,))
        script = f"mkdir -p {run_dir}/out {run_dir}/tmp\ncd {run_dir}/out\nexec true"
        launch = dataclasses.replace(spec.launch, staging=staging, shell=script)
        return dataclasses.replace(spec, launch=launch)

    renamed = cache.key_for(staged_as("renamed-filelist.txt", "/tmp/run-a"))
    assert renamed != cache.key_for(staged_as("inp-filelist.txt", "/tmp/run-a"))
    assert renamed == cache.key_for(staged_as("renamed-filelist.txt", "/tmp/run-b"))
