"""Running a Snakemake `shell:` job directly in the Batch job, without Snakemake in the container.

The default way to run a Snakemake job remotely is Snakemake itself inside the container
(`format_job_exec`): it imports Snakemake, unpacks the workflow sources, parses the Snakefile,
builds the job's DAG and moves files with the S3 storage plugin. That costs about 4 s of wall time
and 3 s of CPU per job here, for a job whose payload may take milliseconds. For a plain `shell:`
rule everything Snakemake does in the job is known in the main process already: the formatted
command, the local paths of inputs, outputs and logs, and the S3 objects behind them. So the
launcher can stage those files itself, run the command with Snakemake's own bash prefix
(`set -euo pipefail;`) and thread variables, and upload the outputs to the same S3 keys the
storage plugin uses; the main Snakemake process then finds them exactly as if the job had run
Snakemake.

A group job runs directly when every member can: the launcher stages the inputs no member makes,
a script (`direct_group.py`) runs the members level by level, and every member's outputs and logs
are uploaded, except temp() files that no job outside the group needs.

Anything this module cannot reproduce exactly goes the full Snakemake way: `run:`, `script:`,
`notebook:`, `wrapper:` and `cwl:` rules (or groups with such a member), conda, containers,
environment modules, shadow rules, benchmarks, and output flags other than
temp/protected/directory (`pipe()` among them). `direct_plan` returns why a job is not eligible,
so the executor can say so once per rule.
"""

from __future__ import annotations

import glob
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from snakemake_executor_awsbatch.direct_group import THREAD_VARIABLES as THREAD_VARIABLES
from snakemake_executor_awsbatch.direct_group import Member, group_script
from snakemake_executor_awsbatch.taskspec import StagedFile

# Output flags whose meaning the main process handles entirely (deletion of temp files,
# write-protection, reports), that only describe the path (storage, multiext, access hints), or
# that direct staging reproduces (directories). touch, pipe, service, ensure and update need the
# job's Snakemake.
_HANDLED_OUTPUT_FLAGS = frozenset(
    {
        "temp",
        "protected",
        "directory",
        "storage_object",
        "path_modified",
        "multiext",
        "report",
        "access_pattern",
    }
)
# The launcher runs the script as one `bash -c` argument, and Linux caps one argument at 128 KiB
# (MAX_ARG_STRLEN); a longer script goes the Snakemake way, which writes long commands to a file.
MAX_SCRIPT_BYTES = 120_000
# The resource a rule sets to 0 to force the full Snakemake path for its jobs.
OPT_OUT_RESOURCE = "awsbatch_direct_shell"
# Group resources that are not summed over members running at once: `runtime` adds up over
# Snakemake's layers, `_nodes` is one machine; values not known yet ('<TBD>') are not ints.
_NOT_WIDTHS = frozenset({"_nodes", "runtime", OPT_OUT_RESOURCE})


@dataclass(frozen=True)
class DirectPlan:
    """What the launcher needs to run one shell job without Snakemake."""

    shell: str
    inputs: tuple[StagedFile, ...]
    outputs: tuple[StagedFile, ...]
    logs: tuple[StagedFile, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotDirect:
    """Why a job needs Snakemake inside the container."""

    reason: str


def direct_plan(
    job: Any, directory_inputs: Iterable[str] = (), shell_prefix: str | None = None
) -> DirectPlan | NotDirect:
    """A direct plan for `job` (single or group), or why it must run through Snakemake in the job.

    `directory_inputs` are the job's inputs that an upstream rule declares as `directory()`
    outputs (only the DAG knows that; the input itself carries no flag); those that
    `directory_inputs(job)` finds in the job's DAG are added. `shell_prefix` is Snakemake's
    bash prefix; by default the one the main process's Snakefile left in place.
    """
    levels = _levels(job)
    members = [member for level in levels for member in level]
    outputs: list[StagedFile] = []
    logs: list[StagedFile] = []
    for wave, level in enumerate(levels):
        for member in level:
            refusal = _refusal(member)
            files = _member_files(member) if refusal is None else NotDirect(refusal)
            if isinstance(files, NotDirect):
                if job.is_group():
                    return NotDirect(
                        f"its member {_label(member)} cannot run directly: {files.reason}"
                    )
                return files
            # A member's outputs go up after those of earlier levels (StagedFile.wave).
            outputs.extend(replace(f, wave=wave) if wave else f for f in files[0])
            logs.extend(files[1])
    directories = set(directory_inputs) | _dag_directory_inputs(job)
    # Inputs one member makes for another never leave the job.
    produced = {f.path for f in (*outputs, *logs)}
    inputs = _inputs(members, produced, directories)
    prefix = _bash_prefix() if shell_prefix is None else shell_prefix
    env: dict[str, str] = {}
    if job.is_group():
        internal = _internal_temp_files(job)
        outputs = [f for f in outputs if f.path not in internal]
        script = group_script(
            [[_member(m, prefix) for m in level] for level in levels],
            limits=_widths(job.resources),
        )
    else:
        script = _make_parent_dirs([*outputs, *logs]) + _command(job, prefix)
        env = _thread_env(job)
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        return NotDirect(f"its script is over {MAX_SCRIPT_BYTES} bytes, too long for bash -c")
    return DirectPlan(
        shell=script, inputs=tuple(inputs), outputs=tuple(outputs), logs=tuple(logs), env=env
    )


def directory_inputs(job: Any) -> set[str]:
    """Inputs of `job` (or of a group's members) that a job outside it makes as directory()."""
    dag = getattr(job, "dag", None)
    if dag is None:
        return set()
    members = _members(job)
    inside = {id(member) for member in members}
    found: set[str] = set()
    for member in members:
        for producer, files in dag.dependencies.get(member, {}).items():
            if id(producer) in inside:
                continue
            wanted = {str(f) for f in files}
            found.update(
                str(out) for out in producer.output if out.is_directory and str(out) in wanted
            )
    return found


# direct_plan's keyword argument shadows the function's name inside it.
_dag_directory_inputs = directory_inputs


def _levels(job: Any) -> list[list[Any]]:
    """The jobs whose commands run, level by level: a group's topological levels, or the job."""
    if not job.is_group():
        return [[job]]
    # Levels are sets; a stable order keeps the script, and so the spec, the same across runs.
    return [sorted(level, key=lambda member: int(member.jobid)) for level in job.toposorted]


def _members(job: Any) -> list[Any]:
    """The jobs whose commands run: a group's members in topological order, or the job."""
    return [member for level in _levels(job) for member in level]


def _label(member: Any) -> str:
    return f"rule {member.name} (jobid {member.jobid})"


def _inputs(members: Iterable[Any], produced: set[str], directories: set[str]) -> list[StagedFile]:
    inputs: list[StagedFile] = []
    seen = set(produced)
    for member in members:
        for item in member.input:
            path = str(item)
            if path in seen:
                continue
            seen.add(path)
            if not item.is_storage:
                # local() inputs (an EFS path, a shared file system) are read where they are, as
                # Snakemake in the job would read them.
                continue
            inputs.append(
                StagedFile(
                    s3_uri=str(item.storage_object.query),
                    path=path,
                    is_directory=bool(item.is_directory) or path in directories,
                )
            )
    return inputs


def _member_files(job: Any) -> tuple[list[StagedFile], list[StagedFile]] | NotDirect:
    """The outputs and logs of one job, all in S3 storage, or why not."""
    outputs = []
    for item in job.output:
        if not item.is_storage:
            return NotDirect(f"output {item} is not in S3 storage")
        outputs.append(
            StagedFile(
                s3_uri=str(item.storage_object.query),
                path=str(item),
                is_directory=bool(item.is_directory),
            )
        )
    logs = []
    for item in job.log:
        if not item.is_storage:
            return NotDirect(f"log {item} is not in S3 storage")
        logs.append(
            StagedFile(s3_uri=str(item.storage_object.query), path=str(item), optional=True)
        )
    return outputs, logs


def _internal_temp_files(group: Any) -> set[str]:
    """Paths of the temp() outputs that only members of `group` need, which never leave the job.

    After a group job Snakemake's main process does not look in storage for temp files that no
    job outside the group needs (GroupJob.postprocess ignores them when missing), and a later run
    does not need them either; uploading them would cost an upload and a delete. The DAG's own
    test decides which they are. Without a DAG (or with --notemp, which keeps temp files) every
    output is uploaded.
    """
    dag = getattr(group, "dag", None)
    if dag is None or dag.workflow.storage_settings.notemp:
        return set()
    targets = {str(f) for f in dag.targetfiles}
    internal: set[str] = set()
    for member in _members(group):
        if member.is_checkpoint:
            # Jobs that the checkpoint's evaluation adds to the DAG may read its temp files.
            continue
        for item in member.output:
            if "temp" not in getattr(item, "flags", {}) or str(item) in targets:
                continue
            if not dag.is_needed_tempfile(member, item, outside_of_group_job=group):
                internal.add(str(item))
    return internal


def _command(job: Any, prefix: str) -> str:
    return f"{prefix}{job.shellcmd}{_bash_suffix()}"


def _thread_env(job: Any) -> dict[str, str]:
    threads = str(job.threads)
    return {name: threads for name in THREAD_VARIABLES}


def _member(job: Any, prefix: str) -> Member:
    parents = _parent_dirs([*(str(f) for f in job.output), *(str(f) for f in job.log)])
    return Member(
        label=_label(job),
        command=_command(job, prefix),
        threads=int(job.threads),
        parents=parents,
        needs={**_widths(job.resources), "_cores": int(job.threads)},
    )


def _widths(resources: Mapping[str, Any]) -> dict[str, int]:
    """The resources that members running at the same time add up (vCPUs, memory, disk)."""
    return {
        name: value
        for name, value in dict(resources).items()
        if isinstance(value, int) and not isinstance(value, bool) and name not in _NOT_WIDTHS
    }


def _refusal(job: Any) -> str | None:
    """Why `job` cannot run directly, or None when it can."""
    if str(job.resources.get(OPT_OUT_RESOURCE, "1")).strip().lower() in {"0", "false", "no"}:
        return f"the rule sets {OPT_OUT_RESOURCE}=0"
    if not job.is_shell:
        return "it is not a shell: rule (run:, script:, notebook:, wrapper: need Snakemake)"
    checks = (
        (job.conda_env_spec, "it uses a conda environment"),
        (job.container_img_url, "it names a container: image"),
        (job.env_modules, "it uses environment modules"),
        (job.is_shadow, "it is a shadow rule"),
        (job.benchmark, "it writes a benchmark file"),
    )
    for present, reason in checks:
        if present:
            return reason
    for item in job.output:
        extra = set(getattr(item, "flags", {})) - _HANDLED_OUTPUT_FLAGS
        if extra:
            return f"output {item} is flagged {', '.join(sorted(extra))}"
        if glob.has_magic(str(item)):
            return f"output {item} has glob characters, which the launcher would expand"
    if not _shell_is_bash():
        return "the workflow sets a shell executable other than bash"
    return None


def _parent_dirs(paths: Iterable[str]) -> tuple[str, ...]:
    # Snakemake creates each output's and log's parent directory before the command runs
    # (IOFile.prepare); directory() outputs themselves are left to the command.
    return tuple(sorted({str(PurePosixPath(p).parent) for p in paths} - {".", "/", ""}))


def _make_parent_dirs(files: Iterable[StagedFile]) -> str:
    parents = _parent_dirs(f.path for f in files)
    if not parents:
        return ""
    return "mkdir -p " + " ".join(shlex.quote(p) for p in parents) + "\n"


def _shell_is_bash() -> bool:
    from snakemake.shell import shell

    executable = shell.get_executable()
    return executable is None or PurePosixPath(str(executable)).name == "bash"


def _bash_prefix() -> str:
    from snakemake.shell import shell

    return str(shell._get_process_prefix(shell.get_executable() or "bash"))


def _bash_suffix() -> str:
    from snakemake.shell import shell

    suffix = str(shell._process_suffix or "")
    return f" {suffix}" if suffix else ""
