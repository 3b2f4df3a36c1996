"""`python -m ingest validate FILE...`: check manifests against Encord's format and limits."""

from __future__ import annotations

import argparse
import sys

from ingest.errors import UserError
from ingest.plan.validate import validate_file

SHOWN_PROBLEMS = 50


def validate_command(args: argparse.Namespace) -> int:
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
