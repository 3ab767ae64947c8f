"""A cwltool executor that submits every ready job and polls them together, holding no thread
per running job: workflows, scatter, conditionals and expressions advance in the controller."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.executors import JobExecutor
from cwltool.process import Process

from snakemake_executor_awsbatch.errors import UserError

from .job import AwsBatchJob
from .session import RunSession


class AwsBatchExecutor(JobExecutor):
    """Runs controller-side jobs inline and Batch jobs asynchronously, polling in batches."""

    def __init__(self, session: RunSession) -> None:
        """Poll through `session.backend`."""
        super().__init__()
        self.session = session

    def run_jobs(
        self,
        process: Process,
        job_order_object: Any,
        logger: logging.Logger,
        runtime_context: RuntimeContext,
    ) -> None:
        """Drive cwltool's job generator, submitting Batch jobs without waiting on each."""
        if runtime_context.workflow_eval_lock is None:
            runtime_context.workflow_eval_lock = threading.Condition(threading.RLock())
        pending: dict[str, AwsBatchJob] = {}
        jobiter = process.job(job_order_object, self.output_callback, runtime_context)
        try:
            for job in jobiter:
                if job is None:
                    if not pending:
                        logger.error("Workflow cannot make any more progress.")
                        break
                    self._wait_some(pending, runtime_context)
                    continue
                outdir = getattr(job, "outdir", None)
                if outdir:
                    self.output_dirs.add(str(outdir))
                if runtime_context.validate_only:
                    name = getattr(job, "name", str(job))
                    print(f"{name} is valid CWL.", file=runtime_context.validate_stdout)
                    return
                if isinstance(job, AwsBatchJob):
                    try:
                        job_id = job.submit(runtime_context)
                    except UserError as problem:
                        # cwltool prints a WorkflowException as one line, without a traceback.
                        raise WorkflowException(str(problem)) from problem
                    if job_id is None:
                        job.finish(None, runtime_context)
                    else:
                        pending[job_id] = job
                else:
                    job.run(runtime_context)
            while pending:
                self._wait_some(pending, runtime_context)
        except BaseException:
            if pending:
                self.session.backend.cancel(list(pending), "cwl-awsbatch run stopped")
            raise

    def _wait_some(self, pending: dict[str, AwsBatchJob], runtime_context: RuntimeContext) -> None:
        """Poll until at least one pending job finishes, then finish those that did."""
        while True:
            states = self.session.backend.poll(list(pending))
            done = [(jid, st) for jid, st in states.items() if st.is_finished and jid in pending]
            if done:
                for job_id, state in done:
                    job = pending.pop(job_id)
                    job.finish(state, runtime_context)
                return
            missing = [jid for jid in pending if jid not in states]
            if missing and len(missing) == len(pending):
                # DescribeJobs can lag just after SubmitJob; keep waiting, but not forever.
                self._missing_polls = getattr(self, "_missing_polls", 0) + 1
                if self._missing_polls > 120:
                    raise WorkflowException(f"Batch no longer knows jobs {missing}")
            time.sleep(self.session.settings.poll_seconds)
