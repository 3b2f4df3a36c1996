"""`python -m ingest schema check|apply FILE`: the custom-metadata schema, offline or in Encord."""

from __future__ import annotations

import argparse
from pathlib import Path

from encord import EncordUserClient
from encord.exceptions import EncordException
from encord.metadata_schema import MetadataSchemaError

from ingest.context import settings_overrides
from ingest.encord_client import DEFAULT_DOMAIN, read_private_key
from ingest.errors import UserError
from ingest.run import encord_domain
from ingest.schema import load_schema
from ingest.schema_apply import apply
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
    parser.add_argument(
        "--ssh-key-file", type=Path, help="Encord private key (or ENCORD_SSH_KEY_FILE)"
    )
    parser.add_argument("--stack", help="read encordDomain from Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=Path, help="read encordDomain from this settings file")
    parser.add_argument("--encord-domain", metavar="URL", help=f"default {DEFAULT_DOMAIN}")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    declared = load_schema(args.file)
    if args.action == "check":
        print(f"{args.file}: valid ({len(declared.keys)} keys)")
        return 0
    domain = encord_domain(load_settings(args.stack, args.config, settings_overrides(args)))
    key = read_private_key(args.ssh_key_file)
    try:
        client = EncordUserClient.create_with_ssh_private_key(
            ssh_private_key=key.text, domain=domain
        )
        changes = apply(declared, client.metadata_schema(), str(args.file))
    except ValueError:
        # The SDK's message for a malformed key contains the key itself: never print it.
        raise UserError(
            f"the Encord key in {key.source} is not an Ed25519 OpenSSH private key"
        ) from None
    except (EncordException, MetadataSchemaError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(
            f"Encord refused the metadata schema from {args.file}: {first_line}"
        ) from None
    print("\n".join(changes) if changes else f"{args.file}: Encord's schema already has every key")
    return 0
