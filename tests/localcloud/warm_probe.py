"""Run by the warm-pool tests as `python -m tests.localcloud.warm_probe CODE [sleep]`.

It prints, as JSON, what a container sees (directory, argv, environment, stdin, module name) and
exits with CODE (after a long sleep with `sleep`). `warm_up` (called by the warm interpreter
before the job) leaves a file at $WARM_PROBE_MARKER, so a test can tell that the interpreter was
ready before its job came.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def warm_up() -> None:
    """Mark that the interpreter has loaded this module (then hang, if $WARM_PROBE_HANG is set)."""
    Path(os.environ["WARM_PROBE_MARKER"]).write_text(str(os.getpid()))
    if os.environ.get("WARM_PROBE_HANG"):
        time.sleep(600)


def main() -> int:
    seen = {
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "env": dict(os.environ),
        "stdin": sys.stdin.read(),
        "name": __name__,
        "path0": sys.path[0],
        "pid": os.getpid(),
        "ppid": os.getppid(),
    }
    print(json.dumps(seen), flush=True)
    if sys.argv[2:3] == ["sleep"]:
        time.sleep(60)
    return int(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
