"""`python -m ingest validate FILE...`: check manifests against Encord's format and limits."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest.errors import UserError
from ingest.plan.validate import validate_file

SHOWN_PROBLEMS = 50


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check Encord JSON import manifests (ours or hand-written), offline",
        description="Check each FILE against Encord's JSON import format and limits. Each "
        "problem is printed as FILE $.json.path: what is wrong and how to fix it.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    failed = []
    for path in args.files:
        problems, entries, urls = validate_file(path)
        if not problems:
            print(f"{path}: valid ({entries} entries, {urls} URLs)")
            continue
        failed.append(f"{path} ({len(problems)})")
        for problem in problems[:SHOWN_PROBLEMS]:
            print(f"{path} {problem.path}: {problem.message}", file=sys.stderr)
        if len(problems) > SHOWN_PROBLEMS:
            print(f"{path}: … and {len(problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
    if failed:
        raise UserError(f"invalid manifest(s): {', '.join(failed)}; fix the entries listed above")
    return 0
