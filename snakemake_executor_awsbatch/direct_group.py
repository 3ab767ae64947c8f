"""The script that runs a Snakemake group job's shell members directly, level by level.

A group job is a set of jobs Snakemake sends to one remote job. `direct_shell.direct_plan` checks
that every member is a plain `shell:` job and collects the group's files; this module writes the
bash script the launcher runs for it. Members run in the group's topological order
(`GroupJob.toposorted`, a list of levels). The members of one level run at the same time, as
Snakemake in the job would run them (the group's resources are sized for that). Each level is a
step: the script waits for every member of a step and, if any failed, exits with the exit code of
the first failing member, so a failure never leaves a member running or starts the next step.

When a level's members together need more of a resource than the group has (Snakemake sizes a
group within global limits such as `--cores 2` or `--resources mem_mb=...` by stacking such
members), the step runs them as a pool, as Snakemake in the job would: whenever a member ends, the
waiting members that fit in what is free start (first fit, in order), so a short member never
waits for a long one that started with it. After a failure no further member starts. The pool
needs bash 4.3 or later (`wait -n`).

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
# The pool's helpers, added to a script only when one of its levels needs them. A pool step fills
# the arrays _awsbatch_cmd, _awsbatch_labels, _awsbatch_threads and _awsbatch_needs (one entry per
# member; needs in the order of _awsbatch_free) and calls `_awsbatch_pool`. Each pass starts every
# waiting member that fits in what is free (one alone over a limit when nothing else runs, as
# Snakemake would run it), then waits for one running member to end and frees what it held.
# _awsbatch_held maps a running member's pid to what it holds, _awsbatch_label to its label.
_POOL_HELPERS = (
    "_awsbatch_release() {\n"
    "  local held k\n"
    '  read -r -a held <<< "${_awsbatch_held[$1]}"\n'
    '  for k in "${!held[@]}"; do _awsbatch_free[k]=$((_awsbatch_free[k] + held[k])); done\n'
    '  unset "_awsbatch_held[$1]"\n'
    '  if [ "$2" -ne 0 ]; then\n'
    '    echo "awsbatch: ${_awsbatch_label[$1]} failed with exit code $2" >&2\n'
    '    [ "$failed" -ne 0 ] || failed=$2\n'
    "  fi\n"
    "}\n"
    # `wait -n -p` cannot name the member that ended: bash drops an ended job from its job
    # table when it starts the next one, after which `wait -n` no longer sees it (it keeps the
    # exit status for `wait PID`). So the members that have ended are found by pid, and
    # `wait -n` only sleeps until the next one ends.
    "_awsbatch_reap() {\n"
    "  local pid ended=0\n"
    "  while :; do\n"
    '    for pid in "${!_awsbatch_held[@]}"; do\n'
    '      kill -0 "$pid" 2>/dev/null && continue\n'
    '      wait "$pid"; _awsbatch_release "$pid" $?; ended=1\n'
    "    done\n"
    '    [ "$ended" -eq 0 ] || return 0\n'
    "    wait -n\n"
    "  done\n"
    "}\n"
    "_awsbatch_pool() {\n"
    '  local pending=("${!_awsbatch_cmd[@]}") rest i k fits needs\n'
    "  declare -gA _awsbatch_held=() _awsbatch_label=()\n"
    '  while [ "${#pending[@]}" -gt 0 ] && [ "$failed" -eq 0 ]; do\n'
    "    rest=()\n"
    '    for i in "${pending[@]}"; do\n'
    '      read -r -a needs <<< "${_awsbatch_needs[i]}"\n'
    "      fits=1\n"
    '      if [ "${#_awsbatch_held[@]}" -gt 0 ]; then\n'
    '        for k in "${!needs[@]}"; do ((needs[k] <= _awsbatch_free[k])) || fits=0; done\n'
    "      fi\n"
    '      if [ "$fits" -eq 0 ]; then rest+=("$i"); continue; fi\n'
    '      _awsbatch_run "${_awsbatch_threads[i]}" "${_awsbatch_cmd[i]}" &\n'
    '      _awsbatch_held[$!]="${_awsbatch_needs[i]}"; _awsbatch_label[$!]=${_awsbatch_labels[i]}\n'
    '      for k in "${!needs[@]}"; do _awsbatch_free[k]=$((_awsbatch_free[k] - needs[k])); done\n'
    "    done\n"
    '    pending=("${rest[@]}")\n'
    '    [ "${#pending[@]}" -eq 0 ] || _awsbatch_reap\n'
    "  done\n"
    '  while [ "${#_awsbatch_held[@]}" -gt 0 ]; do _awsbatch_reap; done\n'
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
    """A bash script that runs `levels` in order, each level's members in parallel.

    `limits` are the group's resources (vCPUs as `_cores`, `mem_mb`...): the members of a level
    that would together exceed them run as a pool within them instead.
    """
    limits = dict(limits or {})
    parts = [_PREAMBLE]
    for number, level in enumerate(levels):
        if len(waves(level, limits)) > 1:
            if _POOL_HELPERS not in parts:
                parts.insert(1, _POOL_HELPERS)
            parts.append(_pool_step(number, level, limits))
        else:
            parts.append(_step(number, level))
    return "".join(parts)


def waves(members: Sequence[Member], limits: Mapping[str, int]) -> list[list[Member]]:
    """`members` split, first fit in their order, into groups that each stay within `limits`.

    More than one group means the members cannot all run at once and need a pool.
    """
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
    lines = [f"# step {number}", *_make_parents(members)]
    for index, member in enumerate(members):
        lines.append(f"_awsbatch_run {int(member.threads)} {shlex.quote(member.command)} &")
        lines.append(f"pid{index}=$!")
    lines.append("failed=0")
    for index, member in enumerate(members):
        lines.append(f'_awsbatch_wait "$pid{index}" {shlex.quote(member.label)}')
    lines.append('if [ "$failed" -ne 0 ]; then exit "$failed"; fi')
    return "\n".join(lines) + "\n"


def _pool_step(number: int, members: Sequence[Member], limits: Mapping[str, int]) -> str:
    names = sorted(limits)
    lines = [
        f"# step {number}: a pool within " + " ".join(f"{n}={limits[n]}" for n in names),
        *_make_parents(members),
        "failed=0",
        f"_awsbatch_free=({' '.join(str(int(limits[name])) for name in names)})",
        "_awsbatch_cmd=() _awsbatch_labels=() _awsbatch_threads=() _awsbatch_needs=()",
    ]
    for index, member in enumerate(members):
        needs = " ".join(str(int(member.needs.get(name, 0))) for name in names)
        lines.append(
            f"_awsbatch_cmd[{index}]={shlex.quote(member.command)}"
            f" _awsbatch_labels[{index}]={shlex.quote(member.label)}"
            f" _awsbatch_threads[{index}]={int(member.threads)} _awsbatch_needs[{index}]='{needs}'"
        )
    lines.append("_awsbatch_pool")
    lines.append('if [ "$failed" -ne 0 ]; then exit "$failed"; fi')
    return "\n".join(lines) + "\n"


def _make_parents(members: Sequence[Member]) -> list[str]:
    parents = sorted({p for member in members for p in member.parents})
    return ["mkdir -p " + " ".join(shlex.quote(p) for p in parents)] if parents else []
