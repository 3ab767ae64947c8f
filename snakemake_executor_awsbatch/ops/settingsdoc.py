"""Generate docs/settings.md from the code, so the settings reference cannot drift.

`python -m snakemake_executor_awsbatch.ops.settingsdoc docs/settings.md` rewrites the page;
`--check` exits 1 when the page is stale (a test runs that).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HEADER = """# Settings reference

Generated from the code by `python -m snakemake_executor_awsbatch.ops.settingsdoc
docs/settings.md`; do not edit by hand.
"""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _type_name(kind: object) -> str:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    origin = typing.get_origin(kind)
    if origin is list and args:
        return f"list of {_type_name(args[0])}"
    if args and origin is not list:  # Optional[X] / X | None
        return _type_name(args[0])
    return str(getattr(kind, "__name__", kind))


def snakemake_section() -> list[str]:
    """The executor's `--awsbatch-*` settings, from `ExecutorSettings`."""
    from snakemake_executor_awsbatch.settings import ExecutorSettings

    lines = [
        "## Snakemake executor (`snakemake --executor awsbatch`)",
        "",
        "Each setting is a flag `--awsbatch-<name>` and an environment variable "
        "`SNAKEMAKE_AWSBATCH_<NAME>`.",
        "",
        "| flag | environment variable | type | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in dataclasses.fields(ExecutorSettings):
        meta: dict[str, Any] = dict(f.metadata)
        if "help" not in meta:
            continue
        flag = "--awsbatch-" + f.name.replace("_", "-")
        env = "SNAKEMAKE_AWSBATCH_" + f.name.upper()
        default = f.default if f.default is not dataclasses.MISSING else ""
        lines.append(
            f"| `{flag}` | `{env}` | {_cell(_type_name(f.type))} | "
            f"{_cell('' if default is None else repr(default))} | {_cell(meta['help'])} |"
        )
    return lines


def _actions(parser: argparse.ArgumentParser) -> Iterable[argparse.Action]:
    for action in parser._actions:  # argparse has no public accessor for its options
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        yield action


def parser_section(title: str, parser: argparse.ArgumentParser, note: str = "") -> list[str]:
    """One table of an argparse parser's options."""
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| option | default | meaning |", "| --- | --- | --- |"]
    for action in _actions(parser):
        name = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest.upper()}`"
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) else repr(default)
        lines.append(f"| {name} | {_cell(shown)} | {_cell(action.help or '')} |")
    return [*lines, ""]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_section() -> list[str]:
    """Every `awsbatch` subcommand's options."""
    from snakemake_executor_awsbatch.cli import build_parser

    lines = ["## `awsbatch` commands", ""]
    for name, sub in sorted(_subparsers(build_parser()).items()):
        nested = _subparsers(sub)
        if nested:
            for inner, parser in sorted(nested.items()):
                lines += parser_section(f"awsbatch {name} {inner}", parser)
        else:
            lines += parser_section(f"awsbatch {name}", sub)
    return lines


def cwl_section() -> list[str]:
    """`cwl-awsbatch`'s own options (cwltool's are documented by cwltool)."""
    try:
        from cwl_runner import main as cwl_main

        parser = cwl_main._own_parser()
    except (ImportError, AttributeError):
        return ["## cwl-awsbatch", "", "(its options could not be read from cwl_runner.main)", ""]
    note = "All of cwltool's options are accepted as well."
    return ["## `cwl-awsbatch`", "", *parser_section("cwl-awsbatch options", parser, note)]


_ENV_PREFIXES = ("SNAKEMAKE_AWSBATCH_", "CWL_AWSBATCH_", "AWS_")


def render() -> str:
    """The whole page, with the defaults that apply when no environment variable is set."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    for key in saved:
        del os.environ[key]  # parsers read their defaults from the environment
    try:
        lines = [HEADER, *snakemake_section(), "", *cwl_section(), *command_section()]
    finally:
        os.environ.update(saved)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or `--check`) the settings page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is stale: regenerate it with {sys.argv[0]} {args.path}")
            return 1
        return 0
    args.path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
