"""The inputs every bucket-reading command shares: stack outputs, settings and an S3 client.

`add_source_arguments(parser)` adds the flags; `load_context(args)` turns them into a
`PlanContext`. `plan` and `run` both use these, so they read exactly the same inputs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ingest.errors import UserError
from ingest.outputs import StackOutputs, load_outputs
from ingest.settings import IngestSettings, load_settings


@dataclass(frozen=True)
class PlanContext:
    outputs: StackOutputs
    settings: IngestSettings
    s3: Any  # a boto3 S3 client

    @property
    def prefixes(self) -> list[str]:
        """The prefixes to scan: the settings' if set, else the stack's; [""] = whole bucket."""
        configured = self.settings.prefixes
        chosen = configured if configured is not None else self.outputs.prefixes
        return chosen or [""]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("inputs")
    source.add_argument("--stack", help="Pulumi stack: reads its outputs and Pulumi.<stack>.yaml")
    source.add_argument("--outputs", type=Path, help="stack outputs JSON file (instead of the CLI)")
    source.add_argument("--config", type=Path, help="settings file (YAML/JSON ingest mapping)")
    flags = parser.add_argument_group("settings overrides (each replaces the configured value)")
    flags.add_argument("--prefix", action="append", dest="prefixes", metavar="PREFIX")
    flags.add_argument("--exclude", action="append", metavar="GLOB")
    flags.add_argument(
        "--group",
        action="append",
        metavar="GLOB=imageGroup|imageSequence",
        help="folders whose images form one image group or sequence",
    )
    flags.add_argument("--metadata-schema", type=Path, metavar="FILE")
    flags.add_argument("--metadata", action="append", type=Path, metavar="CSV|JSONL")
    flags.add_argument("--no-sidecars", action="store_true", help="ignore <key>.metadata.json")
    flags.add_argument("--chunk-size", type=int, metavar="N", help="URLs per manifest file")
    flags.add_argument(
        "--listing",
        choices=("fast", "paginator", "inventory"),
        help="object list source: fast lister (default), boto3 paginator, S3 Inventory report",
    )
    flags.add_argument("--inventory-location", metavar="S3_URL", help="an S3 Inventory's folder")
    flags.add_argument("--out", type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def add_encord_arguments(parser: argparse.ArgumentParser) -> None:
    """Overrides for the settings only the Encord-facing commands use."""
    flags = parser.add_argument_group("Encord")
    flags.add_argument("--integration", help="Encord integration title")
    flags.add_argument("--folder", help="Encord Files folder name")
    flags.add_argument("--dataset", help="Encord Dataset title")
    flags.add_argument("--encord-domain", metavar="URL")


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, keyed by their config names."""
    overrides = {
        "prefixes": getattr(args, "prefixes", None),
        "exclude": getattr(args, "exclude", None),
        "groups": _group_rules(getattr(args, "group", None)),
        "metadataSchema": getattr(args, "metadata_schema", None),
        "metadataFiles": getattr(args, "metadata", None),
        "metadataSidecars": False if getattr(args, "no_sidecars", False) else None,
        "chunkSize": getattr(args, "chunk_size", None),
        "listing": getattr(args, "listing", None),
        "inventoryLocation": getattr(args, "inventory_location", None),
        "outputDir": getattr(args, "out", None),
        "integration": getattr(args, "integration", None),
        "folder": getattr(args, "folder", None),
        "dataset": getattr(args, "dataset", None),
        "encordDomain": getattr(args, "encord_domain", None),
    }
    return {name: value for name, value in overrides.items() if value is not None}


def _group_rules(values: list[str] | None) -> list[dict[str, str]] | None:
    if values is None:
        return None
    rules = []
    for value in values:
        folders, sep, kind = value.rpartition("=")
        if not sep or not folders:
            raise UserError(f"--group {value!r}: write GLOB=imageGroup or GLOB=imageSequence")
        rules.append({"folders": folders, "as": kind})
    return rules


def load_context(args: argparse.Namespace) -> PlanContext:
    # Settings first: they are local and cheap to check, the outputs may need the Pulumi CLI.
    settings = load_settings(args.stack, args.config, settings_overrides(args))
    outputs = load_outputs(args.stack, args.outputs)
    if settings.integration is None and outputs.integration_title:
        settings = settings.model_copy(update={"integration": outputs.integration_title})
    return PlanContext(outputs=outputs, settings=settings, s3=s3_client(outputs, settings))


def s3_client(outputs: StackOutputs, settings: IngestSettings) -> Any:
    """Credentials and endpoint the boto3 way (profile, env, role; AWS_ENDPOINT_URL)."""
    config = Config(
        max_pool_connections=max(10, settings.scan_workers * 2),
        retries={"mode": "standard", "max_attempts": 8},
    )
    return boto3.session.Session().client("s3", region_name=outputs.region, config=config)
