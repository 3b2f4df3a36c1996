"""`python -m ingest schema check|apply FILE`: the custom-metadata schema, offline or in Encord."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.context import settings_overrides
from ingest.encord.client import DEFAULT_DOMAIN, add_key_argument, connect
from ingest.encord.schema_sync import apply
from ingest.plan.schema import load_schema
from ingest.settings import load_settings


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="check or apply a declarative custom-metadata schema (YAML/JSON)",
        description="check: validate FILE offline. apply: merge FILE into the organisation's "
        "Encord metadata schema (existing keys kept; a type conflict is an error).",
    )
    parser.add_argument("action", choices=("check", "apply"))
    parser.add_argument("file", type=Path, metavar="FILE")
    add_key_argument(parser)
    parser.add_argument("--stack", help="read encordDomain from Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=Path, help="read encordDomain from this settings file")
    parser.add_argument("--encord-domain", metavar="URL", help=f"default {DEFAULT_DOMAIN}")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    declared = load_schema(args.file)
    if args.action == "check":
        print(f"{args.file}: valid ({len(declared.keys)} keys)")
        return 0
    settings = load_settings(args.stack, args.config, settings_overrides(args))
    client = connect(settings.encord_domain, args.ssh_key_file)
    changes = apply(client, declared, str(args.file))
    print("\n".join(changes) if changes else f"{args.file}: Encord's schema already has every key")
    return 0
