"""Shared helpers for the Snakemake executor tests: plugin registration and CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from snakemake_executor_awsbatch.localcloud import LocalCloud

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
LOCAL_IMAGE = "localcloud/host:latest"


def register_plugin() -> None:
    """Make `--executor awsbatch` known in this process, also under a PEP 660 editable install.

    Snakemake finds plugins with `pkgutil.iter_modules()`, which does not see modules served by
    setuptools' editable finder, so the tests register the shim explicitly.
    """
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    import snakemake_executor_plugin_awsbatch as shim

    ExecutorPluginRegistry().register_plugin("snakemake_executor_plugin_awsbatch", shim)


def cli_env(cloud: LocalCloud | None) -> dict[str, str]:
    """Environment for a `snakemake` subprocess: the repo importable, AWS pointed at `cloud`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNAKEMAKE_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if cloud is not None:
        env.update(cloud.client_env())
    return env


def batch_args(cloud: LocalCloud, prefix: str, *extra: str) -> list[str]:
    """Command-line flags that send a run to `cloud` with S3 storage under `prefix`."""
    return [
        "--executor",
        "awsbatch",
        "--awsbatch-endpoint-url",
        cloud.endpoint_url,
        "--awsbatch-region",
        cloud.region,
        "--awsbatch-queue",
        cloud.queue_name,
        "--awsbatch-image",
        LOCAL_IMAGE,
        "--default-storage-provider",
        "s3",
        "--default-storage-prefix",
        prefix,
        "--seconds-between-status-checks",
        "1",
        *extra,
    ]


def run_snakemake(
    workdir: Path, args: list[str], cloud: LocalCloud | None, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """Run the snakemake CLI in `workdir`, capturing its combined output."""
    return subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        env=cli_env(cloud),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every workflow file under `root` with its bytes (Snakemake's bookkeeping left out)."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".snakemake" or path.name == ".snakemake_timestamp":
            continue
        if path.is_file():
            out[str(rel)] = path.read_bytes()
    return out
