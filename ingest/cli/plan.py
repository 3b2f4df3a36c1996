"""`python -m ingest plan`: scan the bucket and write Encord manifests, CSV files and a report."""

from __future__ import annotations

import argparse
import json

from ingest.context import add_source_arguments, load_context
from ingest.errors import UserError
from ingest.plan.pipeline import plan


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="build the Encord import manifests from the bucket (touches nothing in Encord)",
        description="Scan the stack's bucket and write manifest-NNNNN.json (Encord's JSON "
        "import format), csv/import-NNNNN.csv (for Encord's web app) and report.json.",
    )
    add_source_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = plan(load_context(args))
    print(
        json.dumps(report.to_json(), indent=2, ensure_ascii=False)
        if args.json
        else report.summary()
    )
    if report.metadata_error_count:
        first = report.metadata_errors[0]
        raise UserError(
            f"{report.metadata_error_count} object(s) have metadata that doesn't match the schema, "
            f"left out of the manifests; first: {first['key']}: {first['error']}"
        )
    return 0
