"""The tool factory: CommandLineTools whose jobs run on AWS Batch; everything else is cwltool's."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from cwl_utils.types import CWLObjectType
from cwltool.command_line_tool import CallbackJob, CommandLineTool
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.job import JobBase
from cwltool.process import Process
from cwltool.utils import OutputCallbackType
from cwltool.workflow import default_make_tool

from .companion import companion_context, companion_for, docker_image
from .job import AwsBatchJob
from .session import RunSession


class AwsBatchCommandLineTool(CommandLineTool):
    """A CommandLineTool whose every invocation is one Batch job."""

    session: RunSession
    job_class: type[AwsBatchJob]

    def make_job_runner(self, runtimeContext: RuntimeContext) -> type[JobBase]:
        """Always the Batch job class: DockerRequirement picks the job's image, not a runtime."""
        job_class: type[JobBase] = self.job_class
        return job_class

    def job(
        self,
        job_order: CWLObjectType,
        output_callbacks: OutputCallbackType,
        runtimeContext: RuntimeContext,
    ) -> Generator[JobBase | CallbackJob, None, None]:
        """cwltool's job; a companion-layout tool gets its in-job paths under /awsbatch-work."""
        req, _ = self.get_requirement("DockerRequirement")
        if companion_for(docker_image(req), self.session.settings) is not None:
            name = str(self.tool.get("id", "tool"))
            runtimeContext = companion_context(runtimeContext, req, name)
        yield from super().job(job_order, output_callbacks, runtimeContext)


def make_tool_factory(session: RunSession) -> Any:
    """A `construct_tool_object` for LoadingContext that builds Batch-backed tools."""

    # One job class per session, so jobs reach the session without global state.
    job_class = type("AwsBatchJob", (AwsBatchJob,), {"session": session})

    def make_tool(toolpath_object: Any, loading_context: LoadingContext) -> Process:
        if hasattr(toolpath_object, "get") and toolpath_object.get("class") == "CommandLineTool":
            tool = AwsBatchCommandLineTool(toolpath_object, loading_context)
            tool.session = session
            tool.job_class = job_class
            return tool
        made: Process = default_make_tool(toolpath_object, loading_context)
        return made

    return make_tool
