"""Command-line entry point: `python -m ingest COMMAND ...`.

The parser is built from `COMMANDS` without importing any command's module: a command's
module (and so boto3, the encord SDK, pyarrow) is imported only when that command runs, so
`--help` and the offline commands start fast. Each command's handler is `(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ingest.cli import options
from ingest.errors import UserError

EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: str  # "module:function", imported when the command runs
    add_arguments: Callable[[argparse.ArgumentParser], None]
    description: str | None = None


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_source_arguments(parser)


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "apply"))
    parser.add_argument("file", type=Path, metavar="FILE")
    options.add_settings_source(parser)
    options.add_setting_flags(parser, "encord", only={"encordDomain"})
    options.add_key_argument(parser)


def _upload_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_source_arguments(parser)
    options.add_encord_arguments(parser)


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    _upload_arguments(parser)
    options.add_setting_flags(parser, "watch")
    watch = parser.add_argument_group("watch")
    watch.add_argument(
        "--queue-url",
        metavar="URL",
        help="SQS queue of the bucket's S3 events (default: the stack's `eventsQueueUrl`)",
    )
    watch.add_argument(
        "--reconcile-every",
        type=_duration,
        default=24 * 3600.0,
        metavar="DURATION",
        help="a full `ingest run` this often (e.g. 24h, 30m; 'off': only at start-up); default 24h",
    )
    watch.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="stop after SECONDS without an event (tests, batch use); default: run until stopped",
    )


def _duration(text: str) -> float | None:
    # Imported when parsing only: the command table stays free of the command's modules.
    from ingest.cli.watch import duration

    return duration(text)


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="upload job id")
    _upload_arguments(parser)


COMMANDS = (
    Command(
        "plan",
        "build the Encord import manifests from the bucket (touches nothing in Encord)",
        "ingest.cli.plan:plan_command",
        _plan_arguments,
        "Scan the stack's bucket and write manifest-NNNNN.json (Encord's JSON import format), "
        "csv/import-NNNNN.csv (for Encord's web app) and report.json.",
    ),
    Command(
        "validate",
        "check Encord JSON import manifests (ours or hand-written), offline",
        "ingest.cli.validate:validate_command",
        _validate_arguments,
        "Check each FILE against Encord's JSON import format and limits. Each problem is "
        "printed as FILE $.json.path: what is wrong and how to fix it.",
    ),
    Command(
        "schema",
        "check or apply a declarative custom-metadata schema (YAML/JSON)",
        "ingest.cli.schema:schema_command",
        _schema_arguments,
        "check: validate FILE offline. apply: merge FILE into the organisation's Encord "
        "metadata schema (existing keys kept; a type conflict is an error).",
    ),
    Command(
        "run",
        "apply the metadata schema, scan the bucket, upload what is new, link it to the "
        "Dataset, verify",
        "ingest.cli.run:run_command",
        _upload_arguments,
    ),
    Command(
        "retry",
        "resubmit only the units that failed, then link and verify",
        "ingest.cli.run:retry_command",
        _upload_arguments,
    ),
    Command(
        "watch",
        "keep the Dataset in sync from the bucket's S3 events (SQS), reconciling periodically",
        "ingest.cli.watch:watch_command",
        _watch_arguments,
        "A full `ingest run` at start-up and every --reconcile-every; in between, batches of "
        "the bucket's S3 events (long-polled from SQS) go through the same stages on just the "
        "keys they touched. A message is deleted only once its outcome is committed.",
    ),
    Command(
        "verify",
        "compare the Dataset with the latest scan; list its file links",
        "ingest.cli.verify:verify_command",
        _upload_arguments,
    ),
    Command(
        "status",
        "the state of one upload job (Encord's guide, Step 6)",
        "ingest.cli.status:status_command",
        _status_arguments,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Import an S3 bucket provisioned by this project's Pulumi stack into Encord.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        command.add_arguments(sub)
        options.add_output_flags(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        module, function = args.handler.split(":")
        handler = getattr(importlib.import_module(module), function)
        return handler(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(error), "exit": error.exit_code}))
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _version() -> str:
    try:
        return metadata.version("encord-s3")
    except metadata.PackageNotFoundError:
        return "(not installed: run `make install`)"
