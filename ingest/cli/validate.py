"""`python -m ingest validate FILE...`: check manifests against Encord's format and limits.

Every file is checked and reported, an unreadable one too; the exit code is 2 if any is
invalid. Imports neither boto3 nor the encord SDK: it starts fast."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ingest.cli.render import print_result
from ingest.errors import UserError
from ingest.plan.validate import validate_file

SHOWN_PROBLEMS = 50


def validate_command(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    failed = []
    for path in args.files:
        try:
            problems, entries, urls = validate_file(path)
        except UserError as error:  # unreadable or not JSON: reported, the others still checked
            if len(args.files) == 1:
                raise
            results.append({"file": str(path), "valid": False, "error": str(error)})
            failed.append(f"{path} (unreadable)")
            if not args.json:
                print(f"error: {error}", file=sys.stderr)
            continue
        results.append(
            {
                "file": str(path),
                "valid": not problems,
                "entries": entries,
                "urls": urls,
                "problemCount": len(problems),
                "problems": [
                    {"path": problem.path, "message": problem.message}
                    for problem in problems[:SHOWN_PROBLEMS]
                ],
            }
        )
        if problems:
            failed.append(f"{path} ({len(problems)})")
            if not args.json:
                for problem in problems[:SHOWN_PROBLEMS]:
                    print(f"{path} {problem.path}: {problem.message}", file=sys.stderr)
                if len(problems) > SHOWN_PROBLEMS:
                    print(f"{path}: … and {len(problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
    valid = [result for result in results if result["valid"]]
    if valid or args.json:
        print_result(
            args,
            {"files": results, "valid": not failed},
            lambda: "\n".join(
                f"{result['file']}: valid ({result['entries']} entries, {result['urls']} URLs)"
                for result in valid
            ),
        )
    if failed:
        raise UserError(f"invalid manifest(s): {', '.join(failed)}; fix the entries listed above")
    return 0
