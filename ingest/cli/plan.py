"""`python -m ingest plan`: scan the bucket and write Encord manifests, CSV files and a report."""

from __future__ import annotations

import argparse

from ingest.cli.progress import Feedback
from ingest.cli.render import print_result
from ingest.context import check_context, load_context
from ingest.errors import UserError
from ingest.mirror.apply import preview
from ingest.plan.pipeline import plan


def plan_command(args: argparse.Namespace) -> int:
    feedback = Feedback.from_args(args)
    context = load_context(args)
    for warning in context.warnings:
        feedback.warn(warning)
    check_context(context)
    feedback.step(
        f"planning s3://{context.outputs.bucket_name} ({context.settings.listing} listing) "
        f"into {context.settings.output_dir}"
    )
    try:
        with preview(context.settings) as (observe, mirrored):
            report = plan(
                context,
                listed=lambda objects: feedback.counted(objects, "listing", "objects"),
                planned=lambda entries: feedback.counted(observe(entries), "planning", "entries"),
            )
            report.mirror = mirrored()
    finally:
        feedback.close()
    print_result(args, report.to_json(), report.summary)
    if report.metadata_error_count:
        first = report.metadata_errors[0]
        raise UserError(
            f"{report.metadata_error_count} object(s) have metadata that doesn't match the schema, "
            f"left out of the manifests; first: {first['key']}: {first['error']}"
        )
    return 0
