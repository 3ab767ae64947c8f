"""The cwltool job class whose run is one AWS Batch job instead of a local process.

The job keeps cwltool's local layout (outdir, tmpdir, stagedir paths on the controller) and the
Batch job recreates the same absolute paths (a companion-layout job uses cwltool's container
layout instead, its paths under /awsbatch-work; see companion.py): inputs are staged there from
S3 by the launcher, the command runs in the output directory, and the whole output directory
goes back to S3. cwltool then collects outputs from that S3 prefix (as it collects a container's
outputs from the host), so outputs are `s3://` locations that the next step uses in place;
nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import shlex
import shutil
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, cast

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.job import CommandLineJob
from cwltool.pathmapper import MapperEnt, PathMapper
from cwltool.utils import bytes2str_in_dicts
from schema_salad.ref_resolver import file_uri

from snakemake_executor_awsbatch import dirmarkers
from snakemake_executor_awsbatch.resources import normalise
from snakemake_executor_awsbatch.taskspec import (
    EfsMount,
    LaunchSpec,
    StagedFile,
    StagingManifest,
    TaskSpec,
)

from .callcache import CallCache
from .companion import companion_for, docker_image
from .disk import DiskRequest, check_disk, unknown_disk_warning
from .efs import EfsLayout
from .fsaccess import is_efs, is_s3, s3_location
from .outputs import (
    MANIFEST_FILE,
    alias_locations,
    complete_files,
    finalise_outdir,
    manifest_script,
)
from .s3store import parse_s3_uri
from .session import RunSession, batch_job_name

_logger = logging.getLogger("cwltool")

_DIR_TYPES = ("Directory", "WritableDirectory")
_CREATE_TYPES = ("CreateFile", "CreateWritableFile")


class AwsBatchJob(CommandLineJob):
    """One CommandLineTool invocation, run as one Batch job (submit, then finish)."""

    session: ClassVar[RunSession]

    def _required_env(self) -> dict[str, str]:
        # The job's PATH is the container's, not the controller's.
        return {"HOME": self.builder.outdir, "TMPDIR": self.builder.tmpdir}

    # ---- synchronous form, for executors that call run() -------------------------------
    def run(
        self, runtimeContext: RuntimeContext, tmpdir_lock: threading.Lock | None = None
    ) -> None:
        """Submit, wait and finish in one call."""
        job_id = self.submit(runtimeContext)
        state = None if job_id is None else self.session.wait(job_id)
        self.finish(state, runtimeContext)

    # ---- asynchronous form, used by AwsBatchExecutor ------------------------------------
    def submit(self, runtimeContext: RuntimeContext) -> str | None:
        """Stage inputs to S3 and submit the Batch job; None if the call cache answered."""
        os.makedirs(self.tmpdir, exist_ok=True)
        # cwltool's _setup insists that staged files exist locally; S3 ones are checked below.
        full_mapper = self.pathmapper
        self.pathmapper = _local_only(full_mapper)
        try:
            self._setup(runtimeContext)
        finally:
            self.pathmapper = full_mapper
        self._check_s3_inputs()
        self._runtime_context = runtimeContext
        self.task_spec = self._task_spec(runtimeContext)
        self._cache = CallCache(self.session.store, self.session.settings.s3_root)
        self._cache_key: str | None = None
        if self.session.settings.call_cache and self._work_reuse_enabled():
            self._cache_key = self._cache.key_for(self.task_spec)
            cached = self._cache.lookup(self._cache_key)
            if cached is not None:
                _logger.info("[job %s] call cache hit, not submitting", self.name)
                self.session.cache_hits += 1
                self._cached_outdir = cached
                return None
        self._check_disk()
        self.session.backend.preflight([self.task_spec])
        job_id = self.session.backend.submit(self.task_spec)
        self.session.jobs_submitted += 1
        _logger.info("[job %s] submitted as Batch job %s", self.name, job_id)
        return job_id

    def finish(self, state: Any | None, runtimeContext: RuntimeContext) -> None:
        """Collect the outputs from S3 (left there) and report them to cwltool."""
        outputs: dict[str, Any] = {}
        process_status = "permanentFail"
        try:
            rcode: int | None
            if state is None:
                rcode = 0
                outdir_uri = self._cached_outdir
            else:
                rcode = self._exit_code(state)
                outdir_uri = self._outdir_uri
            process_status = self._status_for(rcode)
            if process_status != "success" and state is not None:
                self._log_failure(state, rcode)
            if rcode is not None and process_status == "success":
                if self.inplace_update:
                    self._write_back_inplace_updates(outdir_uri)
                outputs = self._collect_from_s3(outdir_uri, rcode)
                if state is not None and self._cache_key is not None:
                    self._cache.record(self._cache_key, outdir_uri)
        except WorkflowException as err:
            _logger.error("[job %s] Job error:\n%s", self.name, err)
            process_status = "permanentFail"
        except Exception as err:
            _logger.exception("Exception while running job: %s.", err)
            process_status = "permanentFail"
        if process_status != "success":
            _logger.warning("[job %s] completed %s", self.name, process_status)
        else:
            _logger.info("[job %s] completed %s", self.name, process_status)
        if runtimeContext.workflow_eval_lock is None:
            raise WorkflowException("runtimeContext.workflow_eval_lock must not be None")
        if self.output_callback:
            with runtimeContext.workflow_eval_lock:
                self.output_callback(outputs, process_status)
        if runtimeContext.rm_tmpdir:
            for scratch in (self.stagedir, self.tmpdir):
                if scratch and os.path.isdir(scratch):
                    shutil.rmtree(scratch, ignore_errors=True)

    # ---- helpers ------------------------------------------------------------------------
    def _collect_from_s3(self, outdir_uri: str, rcode: int) -> dict[str, Any]:
        """cwltool's output collection run against the job's output prefix in S3."""
        store = self.session.store
        manifest = finalise_outdir(store, outdir_uri, f"{outdir_uri}.manifest")
        location = s3_location(outdir_uri)
        collector = self.collect_outputs
        want_checksum = True
        if isinstance(collector, functools.partial):
            want_checksum = bool(collector.keywords.get("compute_checksum", True))
            # Checksums come from the job's manifest below instead of reading every file back.
            collector = functools.partial(collector, compute_checksum=False)
        collected = collector(location, rcode)
        outputs = dict(cast(Mapping[str, Any], bytes2str_in_dicts(collected)))
        fs_access = self.builder.make_fs_access(location)
        complete_files(outputs, location, manifest, fs_access, want_checksum)
        if self.inplace_update:
            alias_locations(outputs, self._inplace_aliases(outdir_uri))
        return outputs

    def _inplace_aliases(self, outdir_uri: str) -> list[tuple[str, str]]:
        """(job copy, original) location pairs of in-place entries: an output that is the
        job's copy is the original, as cwltool's symlinked in-place entries resolve to it."""
        if self.generatemapper is None:
            return []
        base = self.builder.outdir.rstrip("/") + "/"
        pairs: list[tuple[str, str]] = []
        for _key, ent in self.generatemapper.items_exclude_children():
            writable = ent.type in ("WritableFile", "WritableDirectory") and ent.staged
            if not writable or ent.resolved.startswith("_:") or not ent.target.startswith(base):
                continue
            copy = s3_location(f"{outdir_uri}/{ent.target[len(base) :]}")
            original = s3_location(ent.resolved) if is_s3(ent.resolved) else file_uri(ent.resolved)
            pairs.append((copy, original))
        return pairs

    def _check_s3_inputs(self) -> None:
        store = self.session.store
        for _key, ent in self.pathmapper.items_exclude_children():
            if not ent.staged or not is_s3(ent.resolved):
                continue
            found = (
                store.is_prefix(ent.resolved)
                if ent.type in _DIR_TYPES
                else store.exists_object(ent.resolved)
            )
            if not found:
                raise WorkflowException(
                    f"Input {ent.resolved} does not exist in S3; upload it or fix its location."
                )

    def _work_reuse_enabled(self) -> bool:
        req, _ = self.builder.get_requirement("WorkReuse")
        return req is None or bool(req.get("enableReuse", True))

    def _exit_code(self, _state: Any) -> int | None:
        """The payload's exit code, or None when the job failed around it (staging, limits)."""
        report = self.session.backend.fetch_report(self.task_spec)
        if report is not None:
            if str(report.get("status", "")) not in ("succeeded", "payload_failed"):
                _logger.warning("[job %s] %s", self.name, report.get("error") or report)
                return None
            code = report.get("payload_exit_code")
            if isinstance(code, int):
                return code
        # No report: the launcher never finished (killed, out of memory, never started).
        return None

    def _status_for(self, rcode: int | None) -> str:
        if rcode is None:
            return "permanentFail"
        if rcode in self.successCodes:
            return "success"
        if rcode in self.temporaryFailCodes:
            return "temporaryFail"
        if rcode in self.permanentFailCodes:
            return "permanentFail"
        return "success" if rcode == 0 else "permanentFail"

    def _log_failure(self, state: Any, rcode: int | None) -> None:
        explain = getattr(state, "explain", None)
        reason = explain() if callable(explain) else str(getattr(state, "status_reason", ""))
        _logger.warning(
            "[job %s] Batch job %s: exit %s, %s", self.name, state.job_id, rcode, reason
        )
        try:
            for line in self.session.backend.fetch_log(state, max_lines=40):
                _logger.warning("[job %s] | %s", self.name, line)
        except Exception as err:  # a missing log must not hide the job's own failure
            _logger.warning("[job %s] log unavailable: %s", self.name, err)

    def _success_codes(self) -> tuple[int, ...]:
        codes = set(self.successCodes) | {0}
        codes -= set(self.temporaryFailCodes) | set(self.permanentFailCodes)
        codes |= set(self.successCodes)
        return tuple(sorted(codes))

    def _commands(self, runtimeContext: RuntimeContext) -> tuple[list[str], dict[str, str]]:
        commands = [str(arg) for arg in self.command_line]
        if not commands:
            raise WorkflowException(
                "Cannot run a CommandLineTool that produces an empty command line; "
                "give it a baseCommand, arguments or an input with an inputBinding."
            )
        env = dict(self.environment)
        if runtimeContext.secret_store is not None:
            store = runtimeContext.secret_store
            commands = [str(c) for c in cast(list[Any], store.retrieve(cast(Any, commands)))]
            env = {
                str(k): str(v)
                for k, v in cast(dict[str, Any], store.retrieve(cast(Any, env))).items()
            }
        return commands, env

    def _staged_inputs(self) -> tuple[list[StagedFile], list[str]]:
        """S3 sources for every staged input and initial-workdir entry, plus empty dirs."""
        store = self.session.store
        staged: list[StagedFile] = []
        empty_dirs: list[str] = []
        mappers = [self.pathmapper] + ([self.generatemapper] if self.generatemapper else [])
        for mapper in mappers:
            for _key, ent in mapper.items_exclude_children():
                if not ent.staged:
                    continue
                if ent.type in _CREATE_TYPES:
                    uri = store.put_bytes_cas(str(ent.resolved).encode("utf-8"))
                    staged.append(StagedFile(s3_uri=uri, path=ent.target))
                elif ent.type in _DIR_TYPES:
                    if ent.resolved.startswith("_:"):
                        empty_dirs.append(ent.target)
                        for _k2, child in _children(mapper, ent.target):
                            if child.type in _DIR_TYPES and child.resolved.startswith("_:"):
                                empty_dirs.append(child.target)
                            else:
                                staged.extend(self._stage_one(child))
                    else:
                        staged.extend(self._stage_one(ent))
                        empty_dirs.append(ent.target)
                else:
                    staged.extend(self._stage_one(ent))
        for item in staged:
            if item.is_directory:
                # The launcher's directory download may skip markers; mkdir in the script
                # recreates the empty directories either way.
                keys = dirmarkers.list_marker_keys(store.client, item.s3_uri)
                prefix = parse_s3_uri(item.s3_uri)[1]
                rels = dirmarkers.marker_dirs(prefix, keys)
                empty_dirs.extend(os.path.join(item.path, rel) for rel in rels if rel)
        return staged, empty_dirs

    def _stage_one(self, ent: MapperEnt) -> list[StagedFile]:
        store = self.session.store
        if ent.type in _CREATE_TYPES:
            uri = store.put_bytes_cas(str(ent.resolved).encode("utf-8"))
            return [StagedFile(s3_uri=uri, path=ent.target)]
        if ent.resolved.startswith("_:"):
            return []
        if ent.type in _DIR_TYPES:
            uri = ent.resolved if is_s3(ent.resolved) else store.upload_dir_cas(ent.resolved)
            return [StagedFile(s3_uri=uri, path=ent.target, is_directory=True)]
        uri = ent.resolved if is_s3(ent.resolved) else store.upload_file_cas(ent.resolved)
        return [StagedFile(s3_uri=uri, path=ent.target)]

    def _task_spec(self, runtimeContext: RuntimeContext) -> TaskSpec:
        session = self.session
        commands, env = self._commands(runtimeContext)
        staged, empty_dirs = self._staged_inputs()
        prefix = session.job_prefix(self.name)
        self._outdir_uri = f"{prefix}/outdir"
        # In-job paths: the controller's own in the default layout, /awsbatch-work/... for a
        # companion-layout job (cwltool's container layout; the builder holds them either way).
        outdir, tmpdir = self.builder.outdir, self.builder.tmpdir
        image = self._image()
        companion = companion_for(image, session.settings)
        dirs = [outdir, tmpdir, *empty_dirs]
        argv = " ".join(shlex.quote(arg) for arg in commands)
        if self.timelimit and companion is None:
            argv = f"timeout -s KILL {int(self.timelimit)} {argv}"
        manifest = os.path.join(tmpdir, MANIFEST_FILE)
        checksums = bool(runtimeContext.compute_checksum)
        # A tool image may lack `find` and `sha1sum`: without the manifest the controller
        # marks the output directory and computes checksums itself.
        describe = [] if companion else manifest_script(outdir, manifest, checksums)
        script = "\n".join(
            [
                "mkdir -p " + " ".join(shlex.quote(d) for d in dirs),
                f"cd {shlex.quote(outdir)}",
                argv,
                "rc=$?",
                *describe,
                "exit $rc",
            ]
        )
        outputs = [StagedFile(s3_uri=self._outdir_uri, path=outdir, is_directory=True)]
        if not companion:
            outputs.append(
                StagedFile(s3_uri=f"{self._outdir_uri}.manifest", path=manifest, optional=True)
            )
        launch = LaunchSpec(
            staging=StagingManifest(prefix=prefix, inputs=tuple(staged), outputs=tuple(outputs)),
            shell=script,
            env=env,
            workdir=outdir,
            stdin=self.stdin,
            stdout=self.stdout,
            stderr=self.stderr,
            success_codes=self._success_codes(),
        )
        resources = self.builder.resources
        timeout = max(60, int(self.timelimit) + 60) if self.timelimit else None
        settings = session.settings
        # EC2: whole vCPUs; Fargate: the smallest vCPU/memory pair that holds the request.
        size = normalise(
            float(resources.get("cores", 1)),
            math.ceil(float(resources.get("ram", 1024))),
            0,
            settings.platform,
        )
        return TaskSpec(
            name=batch_job_name(self.name),
            image=image,
            companion_image=companion,
            launch=launch,
            queue=settings.queue,
            vcpus=size.vcpus,
            memory_mib=size.memory_mib,
            timeout_seconds=timeout,
            mounts=self._mounts(),
            tags={"cwl-awsbatch-run": session.run_id, **settings.extra_tags},
            platform=settings.platform,
            job_role_arn=settings.job_role_arn,
            execution_role_arn=settings.execution_role_arn,
        )

    def _mounts(self) -> tuple[EfsMount, ...]:
        """The run's EFS mounts, plus the on-demand ones this job's `efs://` inputs name."""
        settings = self.session.settings
        layout = EfsLayout(settings.efs_mounts, settings.efs_on_demand)
        mounts = list(settings.efs_mounts)
        for _key, ent in self.pathmapper.items():
            if is_efs(ent.resolved):
                mount = layout.mount_for(ent.resolved)
                if mount not in mounts:
                    mounts.append(mount)
        return tuple(mounts)

    def _check_disk(self) -> None:
        """outdirMin + tmpdirMin against the queue's disks; sets Fargate ephemeral storage."""
        resources = self.builder.resources
        req, _ = self.builder.get_requirement("ResourceRequirement")
        keys = ("outdirMin", "outdirMax", "tmpdirMin", "tmpdirMax")
        request = DiskRequest(
            name=self.name,
            outdir_mib=float(resources.get("outdirSize", 0)),
            tmpdir_mib=float(resources.get("tmpdirSize", 0)),
            explicit=req is not None and any(k in req for k in keys),
        )
        capacity = getattr(self.session.backend, "capacity", None)
        platforms: tuple[str, ...] = ()
        if capacity is not None:
            platforms = tuple(capacity.limits(self.task_spec.queue).platforms)
        host = self.session.settings.host_disk_mib
        gib = check_disk(request, platforms, host)
        if gib is not None:
            self.task_spec = dataclasses.replace(self.task_spec, ephemeral_storage_gib=gib)
        fargate = bool(platforms) and all(p == "FARGATE" for p in platforms)
        unknown = request.explicit and host is None and not fargate
        if unknown and not self.session.disk_warning_given:
            self.session.disk_warning_given = True
            _logger.warning(unknown_disk_warning(request))

    def _image(self) -> str:
        req, _ = self.builder.get_requirement("DockerRequirement")
        return docker_image(req) or self.session.settings.default_image

    def _write_back_inplace_updates(self, outdir_uri: str) -> None:
        """InplaceUpdateRequirement: the job changed its copy; carry the change to the input
        (a local file or directory, or the S3 objects it came from, copied server-side)."""
        if self.generatemapper is None:
            return
        store = self.session.store
        base = self.builder.outdir.rstrip("/") + "/"
        for _key, ent in self.generatemapper.items_exclude_children():
            if ent.type not in ("WritableFile", "WritableDirectory") or not ent.staged:
                continue
            if ent.resolved.startswith("_:") or not ent.target.startswith(base):
                continue
            source = f"{outdir_uri}/{ent.target[len(base) :]}"
            if ent.type == "WritableFile":
                if not store.exists_object(source):
                    continue
                if is_s3(ent.resolved):
                    store.copy(source, ent.resolved)
                else:
                    store.download_file(source, ent.resolved)
            elif store.is_prefix(source):
                if is_s3(ent.resolved):
                    store.sync_prefix(source, ent.resolved)
                else:
                    store.download_tree(source, ent.resolved)


def _children(mapper: PathMapper, parent: str) -> Iterable[tuple[str, MapperEnt]]:
    prefix = parent.rstrip("/") + "/"
    for key, ent in mapper.items():
        if ent.target.startswith(prefix) and ent.staged:
            yield key, ent


def _local_only(mapper: PathMapper) -> PathMapper:
    """A copy of `mapper` without S3-resolved entries, which cannot be symlinked."""
    copy = PathMapper([], "", "")
    pathmap: Mapping[str, MapperEnt] = mapper._pathmap
    for key, ent in pathmap.items():
        if not is_s3(ent.resolved):
            copy._pathmap[key] = ent
    return copy
