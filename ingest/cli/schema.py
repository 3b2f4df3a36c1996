"""`python -m ingest schema check|apply FILE`: the custom-metadata schema, offline or in Encord.

`check` imports neither boto3 nor the encord SDK: it starts fast."""

from __future__ import annotations

import argparse

from ingest.cli.options import settings_overrides
from ingest.cli.render import print_result
from ingest.plan.schema import load_schema
from ingest.settings import load_settings


def schema_command(args: argparse.Namespace) -> int:
    declared = load_schema(args.file)
    keys = {name: spec.type for name, spec in sorted(declared.keys.items())}
    if args.action == "check":
        print_result(
            args,
            {"file": str(args.file), "valid": True, "keys": keys},
            lambda: f"{args.file}: valid ({len(declared.keys)} keys)",
        )
        return 0
    from ingest.encord.client import connect  # the SDK only for `apply`
    from ingest.encord.schema_sync import apply

    settings = load_settings(args.stack, args.config, settings_overrides(args))
    client = connect(settings.encord_domain, args.ssh_key_file)
    changes = apply(client, declared, str(args.file))
    print_result(
        args,
        {"file": str(args.file), "keys": keys, "changes": changes},
        lambda: (
            "\n".join(changes) if changes else f"{args.file}: Encord's schema already has every key"
        ),
    )
    return 0
