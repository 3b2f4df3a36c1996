"""`python -m ingest schema check|apply FILE`: the custom-metadata schema, offline or in Encord."""

from __future__ import annotations

import argparse

from ingest.cli.options import settings_overrides
from ingest.encord.client import connect
from ingest.encord.schema_sync import apply
from ingest.plan.schema import load_schema
from ingest.settings import load_settings


def schema_command(args: argparse.Namespace) -> int:
    declared = load_schema(args.file)
    if args.action == "check":
        print(f"{args.file}: valid ({len(declared.keys)} keys)")
        return 0
    settings = load_settings(args.stack, args.config, settings_overrides(args))
    client = connect(settings.encord_domain, args.ssh_key_file)
    changes = apply(client, declared, str(args.file))
    print("\n".join(changes) if changes else f"{args.file}: Encord's schema already has every key")
    return 0
