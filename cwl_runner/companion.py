"""Which CommandLineTools run in the companion layout, and where their in-job paths live.

A tool whose DockerRequirement names an image other than the run's default image runs that image
unchanged (it needs /bin/sh, not Python) when `--awsbatch-companion-image` is set: staging runs in
companion containers of the same Batch job, which share only the task volume at
`/awsbatch-work`. Such a job's paths are therefore fixed under that root, as cwltool's Docker
layout fixes them under /var/spool/cwl: cwltool maps them itself once the runtime context asks
for a container with these directories.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException

from snakemake_executor_awsbatch.jobdef import COMPANION_DIR

from .session import RunnerSettings

OUTDIR = f"{COMPANION_DIR}/out"
TMPDIR = f"{COMPANION_DIR}/tmp"
STAGEDIR = f"{COMPANION_DIR}/stg"


def docker_image(req: Mapping[str, Any] | None) -> str | None:
    """The image a DockerRequirement names (dockerPull, else dockerImageId), if any."""
    if req is None:
        return None
    for key in ("dockerPull", "dockerImageId"):
        if req.get(key):
            return str(req[key])
    return None


def companion_for(image: str | None, settings: RunnerSettings) -> str | None:
    """The companion image to stage with, or None when the job runs in the single-container
    layout (no companion image set, or the tool uses the run's default image)."""
    if settings.companion_image is None or image is None or image == settings.default_image:
        return None
    return settings.companion_image


def companion_context(
    runtime: RuntimeContext, req: Mapping[str, Any] | None, name: str
) -> RuntimeContext:
    """A copy of `runtime` under which cwltool lays the job out under /awsbatch-work."""
    wanted = req.get("dockerOutputDirectory") if req is not None else None
    if wanted is not None and not str(wanted).startswith(COMPANION_DIR + "/"):
        raise WorkflowException(
            f"Tool {name} sets dockerOutputDirectory {wanted}, which a companion-layout job "
            f"cannot use; put it under {COMPANION_DIR}/ or drop it."
        )
    copy = runtime.copy()
    copy.use_container = True
    copy.docker_outdir = OUTDIR
    copy.docker_tmpdir = TMPDIR
    copy.docker_stagedir = STAGEDIR
    return copy
