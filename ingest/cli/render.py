"""Human and JSON output of the commands: one summary per command, on stdout."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def print_result(
    args: argparse.Namespace, summary: dict[str, Any], human: Callable[[], str]
) -> None:
    """`summary` as JSON with --json, else `human()`; nothing with --quiet."""
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    elif not getattr(args, "quiet", False):
        print(human())
