"""`ingest run` and `retry`: Encord's guide Steps 5–9 as rerunnable commands
(`ingest.cli.run_steps`).

The inputs are checked first, without Encord; then, for `run`, the bucket's listing is begun
in its child process, and only then are the steps, and with them the encord SDK, imported:
the SDK's import takes about as long as a large part of the listing, and overlaps it. A sync
of a folder mirrored before imports the SDK only if it has anything to ask of Encord beyond
what a child process looks up meanwhile (`ingest.cli.run_scan`).
"""

from __future__ import annotations

import argparse

from ingest.cli.inputs import check_upload_inputs
from ingest.encord.ahead import end_ahead
from ingest.listing.sources import listing_begun
from ingest.state import STATE_FILE, RunState


def run_command(args: argparse.Namespace) -> int:
    inputs = check_upload_inputs(args)
    out, folder = inputs.context.settings.output_dir, inputs.names.folder
    with listing_begun(inputs.context):
        if (out / STATE_FILE).exists():  # else nothing is written before Encord's checks
            with RunState.in_directory(out, exclusive=True) as state:
                if state.has_mirrored(folder):
                    from ingest.cli.run_scan import sync

                    return sync(args, inputs, state)
        end_ahead()  # no sync: its look-ups are the steps' own
        from ingest.cli.run_steps import run  # after the listing has begun: see above

        return run(args, inputs)


def retry_command(args: argparse.Namespace) -> int:
    from ingest.cli.run_steps import retry

    return retry(args, check_upload_inputs(args))
