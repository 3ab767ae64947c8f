"""The script that runs a Snakemake group job's shell members directly, level by level.

A group job is a set of jobs Snakemake sends to one remote job. `direct_shell.direct_plan` checks
that every member is a plain `shell:` job and collects the group's files; this module writes the
bash script the launcher runs for it. Members run in the group's topological order
(`GroupJob.toposorted`, a list of levels). The members of one level run at the same time, as
Snakemake in the job would run them (the group's resources are sized for that). When they
together need more of a resource than the group has (Snakemake sizes a group within global limits
such as `--resources mem_mb=...` by stacking such members, and Snakemake in the job would start
them as resources free up), the level runs in waves that each fit. Each level or wave is a step:
the script waits for every member of a step and, if any failed, exits with the exit code of the
first failing member in the step's order, so a failure never leaves a member running or starts
the next step.

Each member runs as `bash -c '<prefix><command><suffix>'` with its own thread variables, exactly
as Snakemake's `shell()` runs it (`Popen(cmd, shell=True, executable=bash)`), so heredocs,
comments on the last line and quotes mean what they mean in a local run: the command travels as
one quoted argument, never spliced into the surrounding script.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# The thread variables Snakemake's shell() sets for every command (snakemake/shell.py).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# The script's preamble. A stop sent to the job (Batch timeout, TerminateJob) reaches the script;
# members running in the background would not get it, so the script forwards it and exits as a
# signalled shell would. Two helpers keep each member to a few bytes of script (the whole script
# is one `bash -c` argument): one runs a member as Snakemake's shell() does, with bash ($BASH is
# the bash running this script, and Snakemake's prefix needs bash), the other waits for one and
# keeps the first failure's exit code. The first is only ever started in the background, so its
# `exec` replaces that background subshell: the pid the script waits for, and forwards a stop
# to, is the member's own bash.
_PREAMBLE = (
    "trap 'kill -TERM $(jobs -p) 2>/dev/null; exit 143' TERM\n"
    "trap 'kill -TERM $(jobs -p) 2>/dev/null; exit 130' INT\n"
    "_awsbatch_run() {\n"
    f'  {" ".join(f"{name}=$1" for name in THREAD_VARIABLES)} exec "${{BASH:-bash}}" -c "$2"\n'
    "}\n"
    "_awsbatch_wait() {\n"
    '  wait "$1"; rc=$?\n'
    '  if [ "$rc" -ne 0 ]; then\n'
    '    echo "awsbatch: $2 failed with exit code $rc" >&2\n'
    '    [ "$failed" -ne 0 ] || failed=$rc\n'
    "  fi\n"
    "}\n"
)


@dataclass(frozen=True)
class Member:
    """One member job of a group, as the group's script runs it."""

    label: str
    command: str
    threads: int = 1
    parents: tuple[str, ...] = ()
    needs: Mapping[str, int] = field(default_factory=dict)


def group_script(
    levels: Sequence[Sequence[Member]], limits: Mapping[str, int] | None = None
) -> str:
    """A POSIX shell script that runs `levels` in order, each level's members in parallel.

    `limits` are the group's resources (vCPUs as `_cores`, `mem_mb`...): members of a level that
    would together exceed one run in successive waves instead.
    """
    parts = [_PREAMBLE]
    number = 0
    for level in levels:
        for wave in waves(level, limits or {}):
            parts.append(_step(number, wave))
            number += 1
    return "".join(parts)


def waves(members: Sequence[Member], limits: Mapping[str, int]) -> list[list[Member]]:
    """`members` split, first fit in their order, into groups that each stay within `limits`."""
    packed: list[tuple[list[Member], dict[str, int]]] = []
    for member in members:
        for wave, used in packed:
            if all(used[name] + member.needs.get(name, 0) <= cap for name, cap in limits.items()):
                wave.append(member)
                for name in used:
                    used[name] += member.needs.get(name, 0)
                break
        else:
            # A member alone over a limit still runs, alone, as Snakemake would run it.
            packed.append(([member], {name: member.needs.get(name, 0) for name in limits}))
    return [wave for wave, _ in packed]


def _step(number: int, members: Sequence[Member]) -> str:
    lines = [f"# step {number}"]
    parents = sorted({p for member in members for p in member.parents})
    if parents:
        lines.append("mkdir -p " + " ".join(shlex.quote(p) for p in parents))
    for index, member in enumerate(members):
        lines.append(f"_awsbatch_run {int(member.threads)} {shlex.quote(member.command)} &")
        lines.append(f"pid{index}=$!")
    lines.append("failed=0")
    for index, member in enumerate(members):
        lines.append(f'_awsbatch_wait "$pid{index}" {shlex.quote(member.label)}')
    lines.append('if [ "$failed" -ne 0 ]; then exit "$failed"; fi')
    return "\n".join(lines) + "\n"
