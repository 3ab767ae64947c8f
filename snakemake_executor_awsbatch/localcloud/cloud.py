"""`LocalCloud`: the whole local cloud (endpoint, engine, moto, state) as a context manager.

Clients reach it with `AWS_ENDPOINT_URL=cloud.endpoint_url` and any credentials. Each instance
uses its own AWS account id inside moto, so several local clouds in one process keep their S3,
Logs and EFS data apart (S3 bucket names are still one global namespace, as on AWS).
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.localcloud import logs, s3snapshot
from snakemake_executor_awsbatch.localcloud.batch_api import BatchApi, Environment
from snakemake_executor_awsbatch.localcloud.chaos import Chaos, ChaosSpec
from snakemake_executor_awsbatch.localcloud.engine import Capacity, Engine
from snakemake_executor_awsbatch.localcloud.inprocess import InProcessTransport, install, uninstall
from snakemake_executor_awsbatch.localcloud.jobdefs import JobDefinitions
from snakemake_executor_awsbatch.localcloud.jobspec import HostContext
from snakemake_executor_awsbatch.localcloud.logs import LogSink
from snakemake_executor_awsbatch.localcloud.motoregions import share_loader_with_moto
from snakemake_executor_awsbatch.localcloud.server import CallLog, CloudApp
from snakemake_executor_awsbatch.localcloud.store import Store

REGION = "us-east-1"
QUEUE_NAME = "local-queue"
CE_NAME = "local-ce"
# The on-demand pair: a fallback for jobs whose spot attempts were all reclaimed.
ONDEMAND_QUEUE_NAME = "local-queue-ondemand"
ONDEMAND_CE_NAME = "local-ce-ondemand"
# Set to 0 to start every launcher job cold (see localcloud.warm).
WARM_LAUNCHERS_VARIABLE = "AWSBATCH_LOCAL_WARM_LAUNCHERS"
# Set to 0 to keep this process's own clients on the loopback socket (see serve_in_process).
IN_PROCESS_VARIABLE = "AWSBATCH_LOCAL_IN_PROCESS"
ACCESS_KEY = "localcloud"
SECRET_KEY = "localcloud"


def _total_memory_mib() -> int:
    pages = os.sysconf("SC_PHYS_PAGES")
    return int(pages * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024))


class LocalCloud:
    """One loopback endpoint serving Batch (our engine) and S3, Logs and EFS (moto)."""

    def __init__(
        self,
        state_dir: Path | None = None,
        port: int = 0,
        vcpus: int | None = None,
        memory_mib: int | None = None,
        chaos: str | None = None,
        min_timeout_seconds: int = 60,
        warm_launchers: bool | None = None,
    ) -> None:
        self._requested_state_dir = state_dir
        self._port = port
        self._vcpus = float(vcpus if vcpus is not None else (os.cpu_count() or 1))
        self._memory_mib = memory_mib if memory_mib is not None else _total_memory_mib()
        if self._vcpus <= 0 or self._memory_mib <= 0:
            raise UserError("The local cloud needs vcpus and memory above 0; give positive sizes.")
        self._chaos_spec = ChaosSpec.parse(chaos)
        self._min_timeout = min_timeout_seconds
        # Launcher jobs forked from a warm interpreter (localcloud.warm); the variable is there
        # to measure, or rule out, its effect.
        self._warm_launchers = (
            os.environ.get(WARM_LAUNCHERS_VARIABLE, "1") != "0"
            if warm_launchers is None
            else warm_launchers
        )
        self.region = REGION
        # The spot queue is the default; only its environment's hosts are reclaimed by chaos.
        self.queue_name = QUEUE_NAME
        self.compute_environment_name = CE_NAME
        self.ondemand_queue_name = ONDEMAND_QUEUE_NAME
        self.ondemand_compute_environment_name = ONDEMAND_CE_NAME
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._store: Store | None = None
        self._calls: CallLog | None = None
        self._started = False
        self._efs_lock = threading.Lock()
        self._efs_registered = False
        self._in_process: InProcessTransport | None = None

    # ----- the interface others use ---------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def state_dir(self) -> Path:
        """Where everything the cloud keeps lives."""
        return self._state_dir

    @property
    def api_calls_path(self) -> Path:
        """`<state-dir>/api-calls.jsonl`."""
        return self._state_dir / "api-calls.jsonl"

    @property
    def efs_file_system_id(self) -> str:
        """The default EFS file system's id."""
        return self._efs_id

    @property
    def account_id(self) -> str:
        """The AWS account id this cloud answers as."""
        return self._account_id

    @property
    def vcpus(self) -> float:
        """The host's vCPUs, shared by both compute environments."""
        return self._vcpus

    @property
    def memory_mib(self) -> int:
        """The host's memory in MiB, shared by both compute environments."""
        return self._memory_mib

    def efs_root(self, fs_id: str) -> Path:
        """The host directory backing an EFS file system."""
        return self._state_dir / "efs" / fs_id

    @property
    def warm_starts(self) -> int:
        """How many jobs were forked from the warm launcher interpreter (localcloud.warm)."""
        pool = self._engine.warm_pool if self._engine is not None else None
        return pool.handed_out if pool is not None else 0

    def wait_for_job_end(self, seen: int, timeout: float) -> int:
        """Block until more than `seen` jobs have ended here, or `timeout` s; the count now.

        A client in this process can wake on a job's end instead of sleeping until its next
        status check: the signal real Batch gives through EventBridge, without the plumbing.
        """
        if self._engine is None:  # not started or stopped: behave like a plain pause
            time.sleep(timeout)
            return seen
        return self._engine.wait_for_job_end(seen, timeout)

    def release_job_end_waiters(self) -> None:
        """End every `wait_for_job_end` in progress at once, as if its timeout had passed."""
        if self._engine is not None:
            self._engine.release_job_end_waiters()

    def prewarm_launchers(self) -> None:
        """Start the interpreter launcher jobs fork from now, not at the first job's start.

        It serves jobs whose definitions and overrides add nothing to the cloud's environment
        (the Snakemake executor's and cwl-awsbatch's). A client that knows it will run such
        jobs calls this at start, so that the imports overlap its own start-up instead of
        delaying its first job.
        """
        if self._engine is not None:
            self._engine.prewarm_launchers()

    def share_host(self, held_vcpus: Callable[[], float] | None) -> None:
        """Count `held_vcpus()` (this machine's vCPUs taken by work outside the cloud) as used.

        A workflow engine that runs some of its jobs on this machine itself, beside the cloud's,
        says here how many vCPUs those take at each moment, so that the two together never
        plan with more cores than the machine has.
        """
        if self._engine is not None:
            self._engine.share_host(held_vcpus)

    def serve_in_process(self) -> None:
        """Serve this process's AWS clients made from now on without the loopback socket.

        For a client process that runs the cloud inside itself (Snakemake with --awsbatch-local,
        cwl-awsbatch --local): its calls are built and signed as before and answered by the
        same application, in the calling thread (see localcloud.inprocess). Until `stop`.
        """
        if not self._started or self._in_process is not None:
            return
        if os.environ.get(IN_PROCESS_VARIABLE, "1") == "0":
            return
        self._in_process = InProcessTransport(self._server.app, self.endpoint_url)
        install(self._in_process)

    @property
    def in_process_calls(self) -> int:
        """How many requests the in-process transport has served."""
        return self._in_process.served if self._in_process is not None else 0

    def client_env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and the AWS CLI) at this cloud."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
        }

    # ----- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bring up moto's services, the engine and the HTTP endpoint."""
        try:
            self._start()
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Release what a failed start acquired."""
        if self._server is not None:
            self._server.server_close()
            self._server = None
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
        for closable in (self._store, self._calls):
            if closable is not None:
                closable.close()
        self._store = self._calls = None
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def _start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        if self._requested_state_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="localcloud-")
            self._state_dir = Path(self._temp.name)
        else:
            self._state_dir = Path(self._requested_state_dir).resolve()
        self._state_dir.mkdir(parents=True, exist_ok=True)
        store = Store(self._state_dir)
        self._store = store
        meta = store.load_meta()
        self._account_id = str(meta.get("account_id") or random.randrange(10**11, 10**12))
        self._efs_id = str(meta.get("efs_file_system_id") or f"fs-{random.getrandbits(32):08x}")
        self.efs_root(self._efs_id).mkdir(parents=True, exist_ok=True)
        store.save_meta({"account_id": self._account_id, "efs_file_system_id": self._efs_id})
        # moto's backends, made on first use under its global lock, list regions from our loader.
        share_loader_with_moto()
        s3snapshot.load(self._account_id, self._state_dir / "s3")
        logs.load(self._account_id, self.region, self._state_dir / "logs.json")

        chaos = Chaos(self._chaos_spec)
        env = Environment(
            account_id=self._account_id,
            region=self.region,
            queue_name=self.queue_name,
            ce_name=self.compute_environment_name,
            ondemand_queue_name=self.ondemand_queue_name,
            ondemand_ce_name=self.ondemand_compute_environment_name,
            vcpus=self._vcpus,
            memory_mib=self._memory_mib,
            min_timeout_seconds=self._min_timeout,
            # Jobs work in temporary directories: their file system's free space is the disk
            # a job can get, declared like the host's vCPUs and memory.
            disk_mib=shutil.disk_usage(tempfile.gettempdir()).free // 2**20,
        )
        try:
            self._server = make_server(
                "127.0.0.1",
                self._port,
                _not_ready,  # replaced below, once the port (needed by jobs' env) is known
                threaded=True,
                request_handler=_QuietHandler,
            )
        except (OSError, SystemExit):
            # werkzeug reports a port in use by exiting; this is a library, so say it instead.
            raise UserError(
                f"Port {self._port} on 127.0.0.1 is not available to the local cloud; choose "
                f"another port (0 picks a free one)."
            ) from None
        self._port = int(self._server.server_address[1])
        host = HostContext(
            efs_root=self._known_efs_root,
            access_point=self._access_point,
            base_env=self._job_base_env(),
        )
        self._engine = Engine(
            capacity=Capacity(self._vcpus, self._memory_mib),
            host=host,
            work_root=self._state_dir / "work",
            store=store,
            sink=LogSink(self._account_id, self.region),
            chaos=chaos,
            account_id=self._account_id,
            region=self.region,
            warm_launchers=self._warm_launchers,
        )
        api = BatchApi(env, self._engine, JobDefinitions(store, self._account_id, self.region))
        self._calls = CallLog(self.api_calls_path)
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server.app = CloudApp(
            api, moto_app, self._account_id, chaos, self._calls, on_efs=self._ensure_moto_efs
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="localcloud-http",
            daemon=True,
        )
        self._thread.start()
        self._started = True

    def stop(self) -> None:
        """Stop jobs and the endpoint, save S3 to the state dir, release moto's data."""
        if not self._started:
            return
        self._started = False
        assert self._engine is not None and self._store is not None and self._calls is not None
        if self._in_process is not None:
            uninstall(self._in_process)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._engine.shutdown()
        if self._temp is None:
            # A temporary state dir is about to go: saving it would be wasted work.
            s3snapshot.save(self._account_id, self._state_dir / "s3")
            logs.save(self._account_id, self.region, self._state_dir / "logs.json")
        s3snapshot.forget(self._account_id)
        logs.forget(self._account_id, self.region)
        self._store.close()
        self._calls.close()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    # ----- helpers --------------------------------------------------------------------------

    def _ensure_moto_efs(self) -> None:
        """Register the default file system in moto's EFS backend under its fixed id.

        Done on the first EFS API call rather than at start: moto's EFS pulls in its EC2
        backend, whose import costs seconds that most users of the cloud never need.
        """
        with self._efs_lock:
            if self._efs_registered:
                return
            from moto.efs.models import efs_backends

            backend: Any = efs_backends[self._account_id][self.region]
            if self._efs_id not in backend.file_systems_by_id:
                fs = backend.create_file_system(
                    creation_token=f"localcloud-{self._efs_id}",
                    performance_mode="generalPurpose",
                    encrypted=True,
                    kms_key_id=None,
                    throughput_mode="elastic",
                    provisioned_throughput_in_mibps=None,
                    availability_zone_name=None,
                    backup=False,
                    tags=[{"Key": "Name", "Value": "localcloud-references"}],
                )
                old = fs.file_system_id
                backend.file_systems_by_id.pop(old)
                fs.file_system_id = self._efs_id
                if hasattr(fs, "file_system_arn"):
                    fs.file_system_arn = str(fs.file_system_arn).replace(old, self._efs_id)
                backend.file_systems_by_id[self._efs_id] = fs
            self._efs_registered = True

    def _known_efs_root(self, fs_id: str) -> Path | None:
        """The directory of the default file system or of one created through the EFS API."""
        if fs_id != self._efs_id:
            with self._efs_lock:
                if not self._efs_registered:
                    return None
            from moto.efs.models import efs_backends

            backend: Any = efs_backends[self._account_id][self.region]
            if fs_id not in backend.file_systems_by_id:
                return None
        root = self.efs_root(fs_id)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _access_point(self, access_point_id: str) -> tuple[str, str] | None:
        """(file system id, root path) of an access point created through the EFS API."""
        with self._efs_lock:
            if not self._efs_registered:
                return None
        from moto.efs.models import efs_backends

        backend: Any = efs_backends[self._account_id][self.region]
        point = backend.access_points.get(access_point_id)
        if point is None:
            return None
        return str(point.file_system_id), str(point.root_directory.get("Path", "/"))

    def _job_base_env(self) -> dict[str, str]:
        """The host environment without AWS settings, plus this cloud's, venv's python first."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.client_env())
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "/usr/bin:/bin")])
        # A job here has no instance of its own: the launcher skips EC2 instance metadata, which
        # would describe this machine if anything, and where the link-local address is filtered
        # would cost its timeout on every job.
        env["AWSBATCH_NO_IMDS"] = "1"
        # Run from a source checkout, jobs import the project from it, as the project's image
        # would from its installed copy.
        checkout = Path(__file__).resolve().parents[2]
        if (checkout / "pyproject.toml").is_file():
            paths = [str(checkout), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return env


class _QuietHandler(MotoRequestHandler):
    """Moto's request handler without a stderr line per request (the call log has them)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Log nothing."""


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Length", "0")])
    return []


def remove_state(state_dir: Path) -> None:
    """Delete a state dir (for tests and `--fresh`)."""
    shutil.rmtree(state_dir, ignore_errors=True)
