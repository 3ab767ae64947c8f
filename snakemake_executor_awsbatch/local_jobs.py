"""The cores Snakemake's own local jobs hold, for the local cloud that shares their machine.

With `--awsbatch-local` two schedulers plan for the same cores: Snakemake runs localrules and
jobs with `local()` files in its own process, with no core limit (on a cluster or cloud those
cores are the submitting machine's), and the local cloud runs Batch jobs with every core of the
machine. A local job with two threads and a Batch job beside it then ask two cores for three
jobs' worth of work, and the local job takes the longer for it. Measured on 2 cores with the
germline workflow: fastp (two threads, local because its FASTQ files are local) took 2.5-4.1 s
instead of 2.0 s while a small Batch job and the cloud's start ran beside it.

The cloud therefore counts the threads of the local jobs that are running as taken
(`LocalCloud.share_host`). Snakemake's executor interface does not say which local jobs run, so
this reads its scheduler's record of running jobs; if that record is not where it is expected
(another Snakemake version), nothing is counted and the cloud plans as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Reading a set that the scheduler changes at that moment raises; a second read succeeds.
READ_ATTEMPTS = 3


def running_local_threads(workflow: Any) -> Callable[[], float]:
    """A function giving the threads of `workflow`'s local jobs whose process is running now."""

    def held() -> float:
        scheduler = getattr(workflow, "scheduler", None)
        running = getattr(scheduler, "running", None)
        if not isinstance(running, set):
            return 0.0
        for _ in range(READ_ATTEMPTS):
            try:
                # A job whose process has ended waits in these lists for its post-processing
                # (checks and uploads in Snakemake's main thread): its cores are free already.
                ended = {
                    id(job)
                    for name in ("_tofinish", "_toerror")
                    for job in list(getattr(scheduler, name, None) or ())
                }
                return float(
                    sum(
                        int(job.threads)
                        for job in list(running)
                        if job.is_local and id(job) not in ended
                    )
                )
            except RuntimeError:  # the set changed size while it was read
                continue
        return 0.0

    return held
