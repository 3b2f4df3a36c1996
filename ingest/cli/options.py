"""The flags commands share, built without importing boto3 or the encord SDK.

The settings overrides are generated from `IngestSettings`: each field's help, metavar and
flag name are declared on the field, once. `settings_overrides(args)` reads them back, keyed
by the settings' camelCase names, so a flag and its config key can never drift apart.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from ingest.errors import UserError
from ingest.settings import IngestSettings

DEST_PREFIX = "setting_"


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """--json, --quiet and --verbose, on every command."""
    parser.add_argument(
        "--json", action="store_true", help="print the result (or the error) as JSON on stdout"
    )
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary, only errors"
    )
    loudness.add_argument(
        "-v", "--verbose", action="store_true", help="say more: each step and what it decided"
    )


def add_settings_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("inputs")
    source.add_argument(
        "--stack",
        help="Pulumi stack: reads its outputs and Pulumi.<stack>.yaml next to Pulumi.yaml",
    )
    source.add_argument("--config", type=Path, help="settings file (YAML/JSON ingest mapping)")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """What every bucket-reading command takes: the stack, its outputs, the settings."""
    add_settings_source(parser)
    inputs = next(g for g in parser._action_groups if g.title == "inputs")
    inputs.add_argument(
        "--outputs", type=Path, help="stack outputs JSON file (instead of the Pulumi CLI)"
    )
    add_setting_flags(parser, "source")


def add_encord_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "encord")
    add_key_argument(parser)


def add_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ssh-key-file",
        type=Path,
        metavar="FILE",
        help="Ed25519 private key (default: $ENCORD_SSH_KEY_FILE, then $ENCORD_SSH_KEY)",
    )


def add_setting_flags(
    parser: argparse.ArgumentParser, scope: str, only: set[str] | None = None
) -> None:
    """One override flag per setting of `scope` ('source' or 'encord'), or of `only` those."""
    title = "settings overrides (each replaces the configured value)"
    if scope == "encord":
        title = "Encord settings overrides"
    flags = parser.add_argument_group(title)
    for name, field in IngestSettings.model_fields.items():
        spec = dict(field.json_schema_extra or {})  # type: ignore[arg-type]
        if spec.pop("scope") != scope:
            continue
        key = field.alias or name
        if only is not None and key not in only:
            continue
        flag = spec.pop("name", None) or "--" + re.sub(r"(?<!^)([A-Z])", r"-\1", key).lower()
        options: dict[str, Any] = {"dest": DEST_PREFIX + key, "help": field.description}
        kind = _value_type(field.annotation)
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
            options["default"] = None
        else:
            if typing.get_origin(kind) is Literal:
                options["choices"] = typing.get_args(kind)
            elif kind in (int, float, Path):
                options["type"] = kind
            if spec.pop("append", False):
                options["action"] = "append"
            options["metavar"] = spec.pop("metavar", None)
        flags.add_argument(str(flag), **options)


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, keyed by their config names."""
    overrides = {
        dest.removeprefix(DEST_PREFIX): value
        for dest, value in vars(args).items()
        if dest.startswith(DEST_PREFIX) and value is not None
    }
    if "groups" in overrides:
        overrides["groups"] = [_group_rule(value) for value in overrides["groups"]]
    return overrides


def _value_type(annotation: Any) -> Any:
    """`list[X]` and `X | None` → X; anything else as it is."""
    while typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def _group_rule(value: str) -> dict[str, str]:
    folders, sep, kind = value.rpartition("=")
    if not sep or not folders:
        raise UserError(f"--group {value!r}: write GLOB=imageGroup or GLOB=imageSequence")
    return {"folders": folders, "as": kind}
