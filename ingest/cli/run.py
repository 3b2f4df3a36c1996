"""`ingest run` and `retry`: Encord's guide Steps 5–9 as rerunnable commands
(`ingest.cli.run_steps`).

The inputs are checked first, without Encord; then, for `run`, the bucket's listing is begun
in its child process, and only then are the steps, and with them the encord SDK, imported:
the SDK's import takes about as long as a large part of the listing, and overlaps it.
"""

from __future__ import annotations

import argparse

from ingest.cli.inputs import check_upload_inputs
from ingest.listing.sources import listing_begun


def run_command(args: argparse.Namespace) -> int:
    inputs = check_upload_inputs(args)
    with listing_begun(inputs.context):
        from ingest.cli.run_steps import run  # after the listing has begun: see above

        return run(args, inputs)


def retry_command(args: argparse.Namespace) -> int:
    from ingest.cli.run_steps import retry

    return retry(args, check_upload_inputs(args))
