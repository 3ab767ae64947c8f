"""The tool factory: CommandLineTools whose jobs run on AWS Batch; everything else is cwltool's."""

from __future__ import annotations

from typing import Any

from cwltool.command_line_tool import CommandLineTool
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.job import JobBase
from cwltool.process import Process
from cwltool.workflow import default_make_tool

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
