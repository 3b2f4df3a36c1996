"""Command-line entry point: `python -m ingest [COMMAND] ...`.

Each command lives in its own module, which exposes `register(subparsers)`; that function
adds a subparser and sets `handler=<callable(args) -> int>` as its default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ingest.errors import UserError

DEFAULT_COMMAND = "run"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Import an S3 bucket provisioned by this project's Pulumi stack into Encord.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(subparsers)
    return parser


def _command_modules():
    # Imported here so `--help` lists every command and a broken one fails loudly in tests.
    from ingest.cli import commands

    return commands.MODULES


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
    if not argv or (argv[0] not in known and argv[0] not in ("-h", "--help")):
        argv.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
