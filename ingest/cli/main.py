"""Command-line entry point: `python -m ingest COMMAND ...`.

The parser is built from `COMMANDS` without importing any command's module: a command's
module (and so boto3, the encord SDK, pyarrow) is imported only when that command runs, so
`--help` and the offline commands start fast. Each command's handler is `(args) -> int`.

Exit codes (ingest.errors): 0 exact, 1 the Dataset or Folder differs, 2 a user error (one
line), 3 an internal error (one line; the traceback goes to a log file, never the
terminal), 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import NoReturn

from ingest.cli import options
from ingest.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, UserError, first_line

ERROR_LOG = "ingest-error.log"
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)
# Environment variables whose values must never reach the error log.
_SECRET_VARIABLES = ("ENCORD_SSH_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class _UsageError(UserError):
    """A command line argparse cannot parse."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as one-line `UserError`s instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: str  # "module:function", imported when the command runs
    add_arguments: Callable[[argparse.ArgumentParser], None]
    description: str | None = None
    # Lists the whole bucket: its listing child starts before the command's imports.
    lists_bucket: bool = False
    # May sync a folder mirrored before: the child that asks Encord meanwhile
    # (`ingest.encord.ahead`) starts before the command's imports too.
    syncs: bool = False


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


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    _upload_arguments(parser)
    parser.add_argument(
        "--links", action="store_true", help="also print every data row's file link"
    )


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
        lists_bucket=True,
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
        lists_bucket=True,
        syncs=True,
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
        _verify_arguments,
    ),
    Command(
        "status",
        "the state of one upload job (Encord's guide, Step 6)",
        "ingest.cli.status:status_command",
        _status_arguments,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        sub.set_defaults(
            handler=command.handler, lists_bucket=command.lists_bucket, syncs=command.syncs
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments
    args: argparse.Namespace | None = None
    try:
        with _sigterm_as_interrupt():
            parser = build_parser()
            names = [command.name for command in COMMANDS]
            if arguments and not set(arguments) & {*names, "-h", "--help", "--version"}:
                # Flags without a command: never guess one.
                raise _UsageError(
                    f"say which command to run, one of: {', '.join(names)} "
                    "(e.g. `python -m ingest run --stack dev`)"
                )
            args = parser.parse_args(arguments)
            as_json = args.json if args.command else as_json
            if args.command is None:
                parser.print_help()
                return 0
            with _listing_started_ahead(args.lists_bucket), _lookups_started_ahead(args.syncs):
                module, function = args.handler.split(":")
                handler = getattr(importlib.import_module(module), function)
                return handler(args)
    except UserError as error:
        return _fail(str(error), error.exit_code, as_json)
    except KeyboardInterrupt:
        return _fail(
            "interrupted: rerun the same command to resume", EXIT_INTERRUPTED, as_json, "error"
        )
    except Exception as error:  # a bug: the user gets one line, the log gets the traceback
        log = _write_error_log(args, error)
        return _fail(
            f"internal error ({type(error).__name__}: {_redacted(first_line(error))[:300]}); "
            f"the details are in {log}: please report them",
            EXIT_INTERNAL,
            as_json,
        )


def _listing_started_ahead(lists_bucket: bool) -> AbstractContextManager[None]:
    if not lists_bucket:
        return nullcontext()
    from ingest.listing.process import started_ahead

    return started_ahead()


def _lookups_started_ahead(syncs: bool) -> AbstractContextManager[None]:
    if not syncs:
        return nullcontext()
    from ingest.encord.ahead import started_ahead

    return started_ahead()


def _fail(message: str, code: int, as_json: bool, prefix: str = "error") -> int:
    print(f"{prefix}: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit": code}))
    return code


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a command as Ctrl-C does: staging removed, the run state committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_error_log(args: argparse.Namespace | None, error: BaseException) -> Path:
    """The traceback, secrets removed, in the output directory if there is one, else a
    temporary directory."""
    out = getattr(args, options.DEST_PREFIX + "outputDir", None) or Path("out/ingest")
    directory = out if Path(out).is_dir() else Path(tempfile.gettempdir())
    text = _redacted("".join(traceback.format_exception(error)))
    path = Path(directory) / ERROR_LOG
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:
        path = Path(tempfile.mkstemp(prefix="ingest-error-", suffix=".log")[1])
        path.write_text(text, encoding="utf-8")
    return path


def _redacted(text: str) -> str:
    text = _PRIVATE_KEY.sub("[private key removed]", text)
    for name in _SECRET_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            text = text.replace(value, f"[${name} removed]")
    return text


def _version() -> str:
    try:
        return metadata.version("encord-s3")
    except metadata.PackageNotFoundError:
        return "(not installed: run `make install`)"
