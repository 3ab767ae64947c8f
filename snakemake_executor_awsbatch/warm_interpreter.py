"""An interpreter that loads a module's imports, then waits for the job that will run it.

The local cloud starts one of these ahead of a launcher job (see `localcloud.warm`): Python's start
and the imports (botocore above all, about 0.3 s of CPU) happen while the previous job runs, and
the job itself starts in milliseconds. Usage:

    python -m snakemake_executor_awsbatch.warm_interpreter MODULE

If the module has a `warm_up()`, it is called then (the launcher's loads botocore's S3 model).
It then reads one line of JSON from stdin, `{"args": [...], "env": {...}, "cwd": "..."}`, and
becomes `python -m MODULE *args` run in `cwd` with exactly `env`, stdin at /dev/null. End of input
before a job arrives (the cloud stopped, or had no use for it) ends it quietly.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys


def read_job_line(fd: int) -> bytes:
    """Bytes up to the first newline of `fd`, read unbuffered so that nothing past it is taken."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def become(module: str, job: dict[str, object]) -> None:
    """Take on the job's directory, environment, stdin and argv, then run `module` as __main__."""
    cwd = str(job["cwd"])
    os.chdir(cwd)
    env = job["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # `python -m` puts the directory it was started in first on the path (unless safe_path).
    if not sys.flags.safe_path:
        sys.path[0] = cwd
    args = job["args"]
    assert isinstance(args, list)
    sys.argv = [module, *(str(a) for a in args)]
    # The module itself was imported only for its imports: run it afresh as __main__, as
    # `python -m` would (runpy warns about a module found already imported).
    sys.modules.pop(module, None)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main() -> None:
    """Preload the module named by argv[1], wait for a job, run it."""
    module = sys.argv[1]
    loaded = importlib.import_module(module)
    warm_up = getattr(loaded, "warm_up", None)
    if callable(warm_up):
        warm_up()
    line = read_job_line(0)
    if not line.strip():
        os._exit(0)
    become(module, json.loads(line))


if __name__ == "__main__":
    main()
