"""The Snakemake executor: each Snakemake job (or group job) becomes one AWS Batch job.

The payload is Snakemake's own job command (`format_job_exec`); files move through Snakemake's
S3 storage plugin, so a job's staging manifest only names the S3 prefix of its spec, log and
report. Status is polled for all active jobs at once (DescribeJobs, 100 ids a call) inside
Snakemake's `status_rate_limiter`; a failure names Batch's reason and the last lines of the job's
log, and the whole log is saved under `.snakemake/awsbatch_logs/`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import CommonSettings

from snakemake_executor_awsbatch.capacity import TooLargeForQueue
from snakemake_executor_awsbatch.direct_shell import DirectPlan, NotDirect, direct_plan
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.jobstate import JobState
from snakemake_executor_awsbatch.local_copies import drop_remote_only_copies
from snakemake_executor_awsbatch.local_jobs import running_local_threads
from snakemake_executor_awsbatch.local_mode import (
    active_cloud,
    copy_outputs,
    freeze_long_lived_objects,
    size_jobs_for_this_machine,
)
from snakemake_executor_awsbatch.retry import is_spot_reclaim
from snakemake_executor_awsbatch.run_totals import RunTotals
from snakemake_executor_awsbatch.s3uri import join_s3_uri, parse_s3_uri
from snakemake_executor_awsbatch.secrets import SECRET_NAME
from snakemake_executor_awsbatch.settings import BatchConfig, resolve
from snakemake_executor_awsbatch.snakemake_resources import JobResources, task_spec
from snakemake_executor_awsbatch.submitter import BatchSubmitter
from snakemake_executor_awsbatch.taskspec import (
    LaunchSpec,
    SourceArchive,
    StagingManifest,
    TaskSpec,
)

LOG_DIR = Path(".snakemake") / "awsbatch_logs"
IDLE_BACKOFF = 3.0
# The longest the status loop sleeps without looking whether the run is shutting down.
WAKE_CHECK_SECONDS = 0.25
_log = logging.getLogger(__name__)


# Snakemake sizes a group job for its widest level, adding up the members that can run at once,
# unless global limits make it stack them.
GROUP_SIZE_HINT = (
    "A group job asks for what its members that can run at the same time need together: pass "
    "--cores N (and --resources mem_mb=M) to have Snakemake size groups within N vCPUs (and M MB), "
    "or put fewer jobs in a group with --group-components."
)


def _user_error(err: UserError) -> WorkflowError:
    return WorkflowError(str(err))


class Executor(RemoteExecutor):  # type: ignore[misc]
    """Submit Snakemake jobs to AWS Batch (or to the local cloud) and follow them."""

    next_seconds_between_status_checks: float  # a property of RemoteExecutor
    # Class-level defaults: RemoteExecutor starts the status thread, which calls `sleep`,
    # before `__post_init__` has run.
    _job_end_signal: Callable[[int, float], int] | None = None
    _ended_seen = 0

    def __post_init__(self) -> None:
        """Validate the settings and connect to Batch; nothing is submitted yet."""
        try:
            self.config: BatchConfig = resolve(self.workflow.executor_settings)
            self.staging_base = self._staging_base()
            self.submitter = BatchSubmitter.create(
                region=self.config.region,
                endpoint_url=self.config.endpoint_url,
                max_calls_per_second=self.config.max_calls_per_second,
            )
        except UserError as err:
            raise _user_error(err) from None
        self.logger.info(
            f"AWS Batch: each job's spec, log and report go under {self.staging_base}/ "
            "(give this prefix to 'awsbatch report')."
        )
        self._checked: set[tuple[object, ...]] = set()
        self._dropped_env: set[str] = set()
        self._explained_rules: set[str] = set()
        self._direct_jobs: set[str] = set()
        self.totals = RunTotals()
        # On the local cloud, which runs in this process, a job's end wakes the status loop at
        # once; on AWS there is no such signal and the loop sleeps its interval.
        if self.config.local:
            cloud = active_cloud()
            self._job_end_signal = cloud.wait_for_job_end
            # Snakemake's local jobs run on the machine the cloud's jobs run on (local_jobs).
            cloud.share_host(running_local_threads(self.workflow))
            # The DAG is built: it joins the long-lived objects no full collection need scan.
            freeze_long_lived_objects()
            cores = size_jobs_for_this_machine(self.workflow, cloud.vcpus)
            if cores is not None:
                self.logger.info(
                    f"Local cloud: jobs and groups are sized within this machine's {cores} "
                    f"vCPUs, as with --cores {cores} (pass --cores to change it)."
                )

    # ---- submission -------------------------------------------------------------------------

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        """Preflight every job of this batch, then submit them one by one."""
        specs = [(job, self._spec_for(job)) for job in jobs]
        self._preflight([spec for _, spec in specs], groups=any(job.is_group() for job in jobs))
        for job, spec in specs:
            self.run_job_pre(job)
            self._submit(job, spec)

    def run_job(self, job: JobExecutorInterface) -> None:
        """Preflight and submit one job."""
        spec = self._spec_for(job)
        self._preflight([spec], groups=job.is_group())
        self._submit(job, spec)

    def _submit(self, job: JobExecutorInterface, spec: TaskSpec) -> None:
        # The job reads its inputs from S3; copies left on this host by local jobs only cost
        # Snakemake S3 calls from here on (see local_copies).
        self.totals.local_copies_dropped += len(drop_remote_only_copies(job))
        try:
            job_id = self.submitter.submit(spec)
        except UserError as err:
            raise _user_error(err) from None
        self.logger.info(f"Job {job.jobid} submitted to AWS Batch as {job_id} ({spec.name}).")
        # A fresh job may be short: return to the base pace instead of an idle back-off.
        self._adapt_interval(progressed=True)
        self.report_job_submission(
            SubmittedJobInfo(job=job, external_jobid=job_id, aux={"spec": spec})
        )

    def _preflight(self, specs: Sequence[TaskSpec], groups: bool = False) -> None:
        # Each distinct shape is checked once per run; the first batch is checked before any
        # job is submitted, so a bad queue or an oversized rule stops the run at once.
        fresh: dict[tuple[object, ...], TaskSpec] = {}
        for spec in specs:
            key = (
                spec.queue,
                spec.image,
                spec.platform,
                spec.vcpus,
                spec.memory_mib,
                spec.gpus,
                spec.mounts,
                spec.ephemeral_storage_gib,
                spec.disk_mib,
            )
            if key not in self._checked:
                fresh.setdefault(key, spec)
        if not fresh:
            return
        try:
            self.submitter.preflight(list(fresh.values()))
        except TooLargeForQueue as err:
            # `groups`: some of the specs are group jobs, which Snakemake sized
            hinted = TooLargeForQueue(f"{err} {GROUP_SIZE_HINT}") if groups else err
            raise _user_error(hinted) from None
        except UserError as err:
            raise _user_error(err) from None
        self._checked.update(fresh)

    def _spec_for(self, job: JobExecutorInterface) -> TaskSpec:
        remote = self.workflow.remote_execution_settings
        rules = _rule_names(job)
        facts = JobResources(
            rule=job.name,
            jobid=job.jobid,
            threads=int(job.threads),
            resources=dict(job.resources),
            preemptible=any(remote.preemptible_rules.is_preemptible(r) for r in rules),
        )
        name_hint = f"{job.name}-{job.jobid}-{uuid.uuid4().hex[:8]}"
        launch = self._launch_spec(job, join_s3_uri(self.staging_base, name_hint))
        try:
            spec = task_spec(
                facts, self.config, launch, preemptible_retries=remote.preemptible_retries
            )
        except UserError as err:
            raise _user_error(err) from None
        if launch.archives or launch.staging.outputs:
            self._direct_jobs.add(spec.name)
        return spec

    def _launch_spec(self, job: JobExecutorInterface, prefix: str) -> LaunchSpec:
        """Run the rule's command directly when that is exact, else Snakemake in the job."""
        plan: DirectPlan | NotDirect = NotDirect("--awsbatch-no-direct-shell is set")
        if self.config.direct_shell:
            plan = direct_plan(job)  # it finds directory() inputs in the DAG itself
        if isinstance(plan, NotDirect):
            if job.name not in self._explained_rules:
                self._explained_rules.add(job.name)
                self.logger.info(f"Rule {job.name} runs Snakemake inside its jobs: {plan.reason}.")
            return LaunchSpec(
                staging=StagingManifest(prefix=prefix),
                shell=self.format_job_exec(job),
                env=self._job_env(),
            )
        return LaunchSpec(
            staging=StagingManifest(
                prefix=prefix, inputs=plan.inputs, outputs=plan.outputs, logs=plan.logs
            ),
            shell=plan.shell,
            env={**self._job_env(), **plan.env},
            archives=self._source_archives(),
        )

    def _source_archives(self) -> tuple[SourceArchive, ...]:
        archive = getattr(self.workflow, "_source_archive", None)
        if archive is None:
            return ()
        return (SourceArchive(s3_uri=str(archive.query), sha256=str(archive.checksum)),)

    def _job_env(self) -> Mapping[str, str]:
        # Snakemake hands storage credentials to spawned jobs as environment variables; on
        # Batch the job role provides them, so anything that looks like a secret is dropped.
        env: dict[str, str] = {}
        for name, value in self.envvars().items():
            if SECRET_NAME.search(name):
                if name not in self._dropped_env:
                    self._dropped_env.add(name)
                    self.logger.info(
                        f"Not passing {name} to Batch jobs: jobs get credentials from the job role."
                    )
                continue
            env[name] = str(value)
        return env

    def _staging_base(self) -> str:
        if self.config.staging_prefix:
            return self.config.staging_prefix
        prefix = self.workflow.storage_settings.default_storage_prefix
        if not prefix or not str(prefix).startswith("s3://"):
            raise UserError(
                "the awsbatch executor moves files through S3; pass --default-storage-provider s3 "
                "--default-storage-prefix s3://bucket/prefix."
            )
        parse_s3_uri(str(prefix))
        return join_s3_uri(str(prefix), ".awsbatch", uuid.uuid4().hex[:12])

    # ---- status -----------------------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        """Poll every active job in one batched call; report finished ones, yield the rest."""
        if not active_jobs:
            return
        ids = [str(info.external_jobid) for info in active_jobs]
        async with self.status_rate_limiter:
            try:
                states = self.submitter.poll(ids)
            except Exception as err:  # a transient API failure must not end the run
                self.logger.warning(f"AWS Batch status check failed, will retry: {err}")
                states = {}
        self._adapt_interval(any(s.is_finished for s in states.values()))
        for info in active_jobs:
            state = states.get(str(info.external_jobid))
            if state is None or not state.is_finished:
                yield info
            elif not state.is_failed:
                if state.spot_reclaims:
                    self.logger.info(
                        f"{state.job_name or state.job_id} survived {state.spot_reclaims} spot "
                        f"reclaim(s) and succeeded on attempt {len(state.attempts)}."
                    )
                # Snakemake first: its next jobs need not wait for the report's round trip.
                self.report_job_success(info)
                self._count(info)
            else:
                moved = self._fallback(info, state)
                if moved is not None:
                    yield moved
                else:
                    self._report_failure(info, state)

    async def sleep(self) -> None:
        """Pause until the next status check; sooner when a local-cloud job ends or the run ends.

        The pause is taken in short slices so that `shutdown` never waits out a long interval.
        """
        deadline = time.monotonic() + float(self.next_seconds_between_status_checks)
        while self.wait:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            pause = min(remaining, WAKE_CHECK_SECONDS)
            # Read anew each slice: the first pause begins before __post_init__ sets the signal,
            # and holding on to None made it sleep out a whole interval (10 s by default) before
            # it saw the first job end.
            signal = self._job_end_signal
            if signal is None:
                await asyncio.sleep(pause)
                continue
            ended = await asyncio.to_thread(signal, self._ended_seen, pause)
            if ended > self._ended_seen:
                self._ended_seen = ended
                return

    def _end_status_wait(self) -> None:
        """Stop the status loop's pause now, when it waits for a local-cloud job's end.

        Snakemake's shutdown joins the status thread, which would otherwise wait out the rest
        of its slice (up to WAKE_CHECK_SECONDS) at the end of every run.
        """
        if self._job_end_signal is None:
            return
        with self.lock:
            self.wait = False
        active_cloud().release_job_end_waiters()

    def _count(self, info: SubmittedJobInfo) -> None:
        spec: TaskSpec | None = (info.aux or {}).get("spec")
        if spec is None:
            return
        try:
            report = self.submitter.fetch_report(spec)
        except Exception:  # totals are informative; a missing report must not fail the job
            report = None
        self.totals.add(report, direct=spec.name in self._direct_jobs)

    def _adapt_interval(self, progressed: bool) -> None:
        # --seconds-between-status-checks is the pace while jobs finish; while nothing does, the
        # pause grows to at most IDLE_BACKOFF times it, so long jobs cost fewer DescribeJobs calls.
        base = float(self.workflow.remote_execution_settings.seconds_between_status_checks)
        current = float(self.next_seconds_between_status_checks)
        wanted = base if progressed else min(max(current, base) * 1.5, base * IDLE_BACKOFF)
        self.next_seconds_between_status_checks = wanted

    def _fallback(self, info: SubmittedJobInfo, state: JobState) -> SubmittedJobInfo | None:
        """Resubmit a job whose spot retries were used up by reclaims to the on-demand queue."""
        spec: TaskSpec | None = (info.aux or {}).get("spec")
        fallback = self.config.fallback_queue
        if spec is None or not fallback or spec.queue == fallback:
            return None
        if not is_spot_reclaim(state.status_reason):
            return None
        moved = replace(spec, queue=fallback)
        try:
            self._preflight([moved])
            job_id = self.submitter.submit(moved)
        except (UserError, WorkflowError) as err:
            self.logger.warning(f"Could not move {spec.name} to queue {fallback}: {err}")
            return None
        self.logger.info(
            f"{spec.name} lost its spot host on every attempt; resubmitted to on-demand queue "
            f"{fallback} as {job_id}."
        )
        return SubmittedJobInfo(job=info.job, external_jobid=job_id, aux={"spec": moved})

    def _report_failure(self, info: SubmittedJobInfo, state: JobState) -> None:
        lines = self._fetch_log(state, (info.aux or {}).get("spec"))
        log_path = self._save_log(info, lines)
        msg = state.explain() + "\n"
        tail = lines[-self.config.log_lines :] if self.config.log_lines else []
        if tail:
            msg += f"Last {len(tail)} line(s) of the job's log:\n" + "\n".join(tail) + "\n"
        self.report_job_error(info, msg=msg, aux_logs=[str(log_path)])

    def _fetch_log(self, state: JobState, spec: TaskSpec | None) -> list[str]:
        # CloudWatch first (what Batch shows); the launcher's copy in S3 when the job never got
        # a log stream, e.g. when it failed before its container started.
        try:
            lines = list(self.submitter.fetch_log(state))
            if not lines and spec is not None:
                lines = list(self.submitter.fetch_task_log(spec))
            return lines
        except Exception as err:  # the failure report matters more than its log
            return [f"(the job's log could not be read: {err})"]

    def _save_log(self, info: SubmittedJobInfo, lines: list[str]) -> Path:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        spec: TaskSpec | None = (info.aux or {}).get("spec")
        stem = spec.name if spec is not None else f"job-{info.job.jobid}"
        path = LOG_DIR / f"{stem}-{info.external_jobid}.log"
        path.write_text("\n".join(lines) + ("\n" if lines else ""))
        return path

    # ---- cancel and shutdown ----------------------------------------------------------------

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        """Terminate every submitted job that has not finished (Ctrl-C, or a failed run)."""
        ids = [str(info.external_jobid) for info in active_jobs if info.external_jobid]
        if ids:
            self.logger.info(f"Terminating {len(ids)} AWS Batch job(s).")
            self.submitter.cancel(ids, "Snakemake run was cancelled")

    def shutdown(self) -> None:
        """Stop polling; with --awsbatch-local also copy the outputs into the working dir."""
        self._end_status_wait()
        super().shutdown()
        if self.config.local:
            self.totals.warm_starts = active_cloud().warm_starts
        if self.totals.jobs:
            self.logger.info(f"AWS Batch: {self.totals.describe()}")
            self.totals.write()
        prefix = self.workflow.storage_settings.default_storage_prefix
        if self.config.local and prefix:
            written = copy_outputs(str(prefix), Path.cwd())
            self.logger.info(f"Copied {len(written)} output file(s) from the local cloud's S3.")


def _rule_names(job: JobExecutorInterface) -> list[str]:
    if job.is_group():
        return [str(j.rule.name) for j in getattr(job, "jobs", ())]
    return [str(job.rule.name)] if hasattr(job, "rule") else [str(job.name)]


common_settings = CommonSettings(
    non_local_exec=True,
    implies_no_shared_fs=True,
    job_deploy_sources=True,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    # Declarations would put storage credentials into the job command; the executor passes a
    # filtered environment through the task spec instead.
    pass_envvar_declarations_to_cmd=False,
    # The job image already holds the S3 storage plugin; installing it per job would cost a
    # PyPI round trip per job and fail on networks without PyPI.
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,
    pass_group_args=True,
)
