"""A cwltool executor that submits every ready job and polls them together, holding no thread
per running job: workflows, scatter, conditionals and expressions advance in the controller."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from typing import Any

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.executors import JobExecutor
from cwltool.process import Process

from snakemake_executor_awsbatch.errors import UserError

from .deliver import S3Delivery, download_outputs
from .fsaccess import is_s3
from .job import AwsBatchJob
from .session import RunSession

_logger = logging.getLogger("cwltool")


class AwsBatchExecutor(JobExecutor):
    """Runs controller-side jobs inline and Batch jobs asynchronously, polling in batches."""

    def __init__(self, session: RunSession) -> None:
        """Poll through `session.backend`."""
        super().__init__()
        self.session = session
        self._s3_outdir: str | None = None

    def execute(
        self,
        process: Process,
        job_order_object: Any,
        runtime_context: RuntimeContext,
        logger: logging.Logger = _logger,
    ) -> tuple[Any | None, str]:
        """cwltool's execute; an `s3://` outdir is delivered here instead of by cwltool."""
        outdir = runtime_context.outdir
        if isinstance(outdir, str) and is_s3(outdir):
            self._s3_outdir = outdir
            runtime_context = runtime_context.copy()
            runtime_context.outdir = None
        result: tuple[Any | None, str] = super().execute(
            process, job_order_object, runtime_context, logger
        )
        return result

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
            self._drive(jobiter, pending, logger, runtime_context)
        except UserError as problem:
            if pending:
                self.session.backend.cancel(list(pending), "cwl-awsbatch run stopped")
            # cwltool prints a WorkflowException as one line, without a traceback.
            raise WorkflowException(str(problem)) from problem
        except BaseException:
            if pending:
                self.session.backend.cancel(list(pending), "cwl-awsbatch run stopped")
            raise

    def _drive(
        self,
        jobiter: Any,
        pending: dict[str, AwsBatchJob],
        logger: logging.Logger,
        runtime_context: RuntimeContext,
    ) -> None:
        """Submit jobs as cwltool makes them ready; finish them as Batch finishes them."""
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
                job_id = job.submit(runtime_context)
                if job_id is None:
                    job.finish(None, runtime_context)
                else:
                    pending[job_id] = job
            else:
                job.run(runtime_context)
        while pending:
            self._wait_some(pending, runtime_context)
        self._deliver(runtime_context)

    def _deliver(self, runtime_context: RuntimeContext) -> None:
        """Bring the final outputs out of the run's S3 prefixes: copied under an `s3://`
        outdir, or downloaded for cwltool to move into a local one (left in S3 when cwltool is
        told to leave outputs where they are)."""
        if not self.final_output or self.final_output[0] is None:
            return
        output = self.final_output[0]
        store = self.session.store
        if self._s3_outdir is not None:
            delivery = S3Delivery(store, self._s3_outdir, runtime_context.make_fs_access(""))
            delivery.deliver(output, bool(runtime_context.compute_checksum))
            _logger.info(
                "final outputs under %s: %d objects copied in S3, %d uploaded",
                self._s3_outdir,
                delivery.copied,
                delivery.uploaded,
            )
            return
        if runtime_context.move_outputs == "leave":
            return
        scratch = tempfile.mkdtemp(prefix=runtime_context.tmp_outdir_prefix)
        # In output_dirs, cwltool moves (not copies) these into --outdir, then removes them.
        self.output_dirs.add(scratch)
        count = download_outputs(output, store, scratch)
        _logger.debug("downloaded %d final output objects", count)

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
