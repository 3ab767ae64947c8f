"""`awsbatch`: the project's command line. Each subcommand lives in the module that owns it and
contributes `add_parser(subparsers)` and a `run(args) -> int` set as the parser's default."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from snakemake_executor_awsbatch.localcloud import cli as local_cli
from snakemake_executor_awsbatch.ops import cli as ops_cli


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="awsbatch",
        description="Run Snakemake and CWL workflows on AWS Batch (and on its local twin).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    local_cli.add_parser(subparsers)
    ops_cli.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `awsbatch` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
