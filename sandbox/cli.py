"""`python -m sandbox serve ...`: run the sandbox in the foreground until interrupted."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sandbox.errors import ApiError
from sandbox.readings import DEFAULT_MAX_JOB_ENTRIES, DEFAULT_MAX_REQUEST_BYTES, LinkedItemDeletion
from sandbox.server import (
    DEFAULT_LONG_POLL_CAP_SECONDS,
    IntegrationSeed,
    Sandbox,
    create_sandbox,
)


def parse_integration(text: str) -> IntegrationSeed:
    """`title=...,role-arn=...,external-id=...` (a value may not contain a comma)."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    try:
        return IntegrationSeed(fields["title"], fields["role-arn"], fields["external-id"])
    except KeyError as missing:
        raise argparse.ArgumentTypeError(
            f"--integration needs title=...,role-arn=...,external-id=... (missing {missing})"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Encord API locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument(
        "--aws-endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="where STS and S3 are (moto in tests); default AWS_ENDPOINT_URL or AWS itself",
    )
    serve.add_argument(
        "--aws-s3-endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL_S3"),
        help="S3 elsewhere than STS (e.g. standins.s3_listing); default AWS_ENDPOINT_URL_S3",
    )
    serve.add_argument(
        "--aws-access-key-id", help="the sandbox's own AWS identity (default: boto3's chain)"
    )
    serve.add_argument("--aws-secret-access-key")
    serve.add_argument(
        "--authorized-keys", required=True, help="OpenSSH authorized_keys of the users"
    )
    serve.add_argument("--state", help="SQLite file to keep state in (default: memory)")
    serve.add_argument(
        "--integration",
        action="append",
        default=[],
        type=parse_integration,
        metavar="title=...,role-arn=...,external-id=...",
    )
    serve.add_argument(
        "--long-poll-cap",
        type=float,
        default=DEFAULT_LONG_POLL_CAP_SECONDS,
        help="seconds a poll is held",
    )
    readings = serve.add_argument_group(
        "readings", "where Encord is silent; the defaults are the least forgiving readings"
    )
    readings.add_argument(
        "--report-skipped-duplicates",
        action="store_true",
        help="items_with_names also lists units skipped by skip_duplicate_urls",
    )
    readings.add_argument(
        "--max-job-entries",
        type=int,
        default=DEFAULT_MAX_JOB_ENTRIES,
        help="entries per upload job; more is HTTP 413",
    )
    readings.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="request body size; more is HTTP 413",
    )
    readings.add_argument(
        "--dedupe-concurrent-jobs",
        action="store_true",
        help="with skip_duplicate_urls, a job settling after another that imported the URL skips it",
    )
    readings.add_argument(
        "--linked-item-deletion",
        choices=[choice.value for choice in LinkedItemDeletion],
        default=LinkedItemDeletion.REFUSE.value,
        help="deleting an item a Dataset uses: refuse, or delete its data rows too",
    )
    readings.add_argument(
        "--org-admin",
        action="append",
        default=[],
        metavar="USER",
        help="a user (key comment) who is an organisation admin; repeatable",
    )
    serve.add_argument("--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if bool(args.aws_access_key_id) != bool(args.aws_secret_access_key):
        print("error: give both --aws-access-key-id and --aws-secret-access-key", file=sys.stderr)
        return 2
    credentials = (
        (args.aws_access_key_id, args.aws_secret_access_key) if args.aws_access_key_id else None
    )
    try:
        sandbox = _create(args, credentials)
    except ApiError as error:  # e.g. an --integration STS would refuse
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    except TypeError as error:  # a reading out of range
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Encord sandbox listening on {sandbox.url}", flush=True)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
    return 0


def _create(args: argparse.Namespace, credentials: tuple[str, str] | None) -> Sandbox:
    return create_sandbox(
        aws_endpoint_url=args.aws_endpoint_url,
        aws_s3_endpoint_url=args.aws_s3_endpoint_url,
        aws_credentials=credentials,
        authorized_keys_path=args.authorized_keys,
        state_path=args.state,
        integrations=args.integration,
        long_poll_cap_seconds=args.long_poll_cap,
        host=args.host,
        port=args.port,
        record_exchanges=False,
        report_skipped_duplicates=args.report_skipped_duplicates,
        max_job_entries=args.max_job_entries,
        max_request_bytes=args.max_request_bytes,
        dedupe_concurrent_jobs=args.dedupe_concurrent_jobs,
        linked_item_deletion=args.linked_item_deletion,
        org_admins=tuple(args.org_admin),
    )
