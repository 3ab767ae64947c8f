"""Run by the warm-pool tests as `python -m tests.localcloud.warm_probe CODE`.

It prints, as JSON, what a container sees (directory, argv, environment, stdin, module name) and
exits with CODE. `warm_up` (called by the warm interpreter before the job) leaves a file at
$WARM_PROBE_MARKER, so a test can tell that the interpreter was ready before its job came.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def warm_up() -> None:
    """Mark that the interpreter has loaded this module and is waiting for its job."""
    Path(os.environ["WARM_PROBE_MARKER"]).write_text(str(os.getpid()))


def main() -> int:
    seen = {
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "env": dict(os.environ),
        "stdin": sys.stdin.read(),
        "name": __name__,
        "path0": sys.path[0],
        "pid": os.getpid(),
    }
    print(json.dumps(seen), flush=True)
    return int(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
