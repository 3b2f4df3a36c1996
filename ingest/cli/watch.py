"""`ingest watch`: near-real-time sync from the bucket's S3 event notifications (via SQS).

A full `ingest run` at start-up and every `--reconcile-every` catches whatever the events
missed; in between, each batch of events goes through the same stages on just the keys it
touched (`ingest.watch`).
"""

from __future__ import annotations

import argparse
import io
import json
import re
from contextlib import redirect_stdout
from typing import Any

import boto3

from ingest.cli.inputs import check_upload_inputs
from ingest.cli.run import run_command
from ingest.cli.run_steps import PreparedUpload, prepare_upload
from ingest.context import load_context
from ingest.errors import UserError
from ingest.listing.touched import TouchedListing, list_touched
from ingest.plan.group import FolderRules
from ingest.watch.loop import Watcher
from ingest.watch.queue import EventQueue
from ingest.watch.sync import sync_touched

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float | None:
    """'24h', '30m', '90s', '1d' or plain seconds → seconds; '0' or 'off' → None."""
    if text.strip().lower() == "off":
        return None
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: write a duration such as 24h, 30m or 90s")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    return seconds or None


def watch_command(args: argparse.Namespace) -> int:
    context = load_context(args)
    queue_url = args.queue_url or context.outputs.events_queue_url
    if not queue_url:
        raise UserError(
            f"no events queue: {context.outputs.source} has no `eventsQueueUrl`; run "
            "`pulumi config set --path encord-s3:events.enabled true` and `pulumi up`, "
            "or pass --queue-url URL"
        )
    sqs = boto3.session.Session().client("sqs", region_name=context.outputs.region)
    queue = EventQueue(sqs, queue_url, context.outputs.events_dead_letter_queue_url)
    rules = FolderRules(context.settings.groups, context.settings.dicom_series)
    upload: PreparedUpload | None = None
    reconciled = 0

    def reconcile() -> dict[str, Any]:
        """A full `ingest run`. Its failure at start-up stops the watch (bad input: exit 2);
        later ones are reported and tried again at the next reconcile."""
        nonlocal reconciled
        reconciled += 1
        try:
            return _run_once(args)
        except UserError as error:
            if reconciled == 1:
                raise
            return {"error": str(error)}

    def listing(keys: list[str]) -> TouchedListing:
        return list_touched(
            context.s3,
            context.outputs.bucket_name,
            keys,
            rules,
            context.prefixes,
            context.settings.scan_workers,
        )

    def sync(touched: TouchedListing) -> Any:
        nonlocal upload
        if upload is None:  # after the start-up reconcile has set up what it needs
            upload = prepare_upload(check_upload_inputs(args))
        return sync_touched(upload, touched)

    watcher = Watcher(
        queue=queue,
        bucket=context.outputs.bucket_name,
        batch_size=context.settings.watch_batch_size,
        batch_seconds=context.settings.watch_batch_seconds,
        visibility_timeout=queue.visibility_timeout(),
        reconcile=reconcile,
        list_touched=listing,
        sync=sync,
        reconcile_every=args.reconcile_every,
        exit_when_idle=args.exit_when_idle,
        json_lines=args.json,
        quiet=args.quiet,
    )
    return watcher.run()


def _run_once(args: argparse.Namespace) -> dict[str, Any]:
    """`ingest run` with the same flags; with --json its summary becomes one field of the
    watch's own JSON line instead of a document of its own."""
    if not args.json:
        return {"exit": run_command(args)}
    captured = io.StringIO()
    with redirect_stdout(captured):
        code = run_command(args)
    return {"exit": code, "result": json.loads(captured.getvalue())}
