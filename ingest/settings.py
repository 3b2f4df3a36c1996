"""Per-environment ingest settings: the `encord-s3:ingest` mapping in `Pulumi.<stack>.yaml`,
or a `--config` YAML/JSON file holding the same mapping, then command-line overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.documents import load_document
from ingest.encord_format import MAX_ITEMS_PER_FILE
from ingest.errors import UserError

CONFIG_KEY = "encord-s3:ingest"
DEFAULT_CHUNK_SIZE = 100_000


class GroupRule(BaseModel):
    """Images directly inside a folder matching `folders` become one image group or sequence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folders: str = Field(
        min_length=1,
        description="glob over folder paths, e.g. 'scans/*' ('*' stays in one folder, '**' crosses)",
    )
    as_: Literal["imageGroup", "imageSequence"] = Field(alias="as")


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    prefixes: list[str] | None = Field(
        default=None, description="key prefixes to scan; unset = the stack's `prefixes` output"
    )
    exclude: list[str] = Field(
        default_factory=list, description="globs over whole keys to skip, e.g. '**/*.tmp'"
    )
    groups: list[GroupRule] = Field(default_factory=list)
    dicom_series: bool = Field(default=True, alias="dicomSeries")
    metadata_schema: Path | None = Field(default=None, alias="metadataSchema")
    metadata_sidecars: bool = Field(default=True, alias="metadataSidecars")
    metadata_files: list[Path] = Field(default_factory=list, alias="metadataFiles")
    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE, ge=1, le=MAX_ITEMS_PER_FILE, alias="chunkSize"
    )
    output_dir: Path = Field(default=Path("out/ingest"), alias="outputDir")
    listing: Literal["fast", "paginator", "inventory"] = Field(
        default="fast",
        description="where the object list comes from: the fast lister, boto3's paginator, or S3 Inventory",
    )
    inventory_location: str | None = Field(
        default=None,
        alias="inventoryLocation",
        description="s3://bucket/prefix/source-bucket/config-id/; unset = the stack's `inventoryLocation`",
    )
    inventory_max_age_hours: float = Field(default=48, gt=0, alias="inventoryMaxAgeHours")
    scan_workers: int = Field(default=16, ge=1, le=64, alias="scanWorkers")
    # Carried for `ingest run`.
    integration: str | None = None
    folder: str | None = None
    dataset: str | None = None
    encord_domain: str | None = Field(default=None, alias="encordDomain")


def config_path(stack: str, directory: Path = Path(".")) -> Path:
    """`Pulumi.<stack>.yaml` for a stack named `org/project/stack` or just `stack`."""
    return directory / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"


def load_settings(
    stack: str | None, config_file: Path | None, overrides: Mapping[str, Any]
) -> IngestSettings:
    """Settings from `config_file`, else the stack's `Pulumi.<stack>.yaml`, else defaults;
    `overrides` (keyed by the settings' camelCase names, from flags) win. Metadata paths in a
    file are relative to that file; `outputDir` is relative to the working directory."""
    if config_file is not None:
        source = str(config_file)
        raw = _read_mapping(config_file, source)
        base = config_file.parent
    elif stack and config_path(stack).exists():
        path = config_path(stack)
        source = f"{path} ({CONFIG_KEY})"
        document = _read_mapping(path, str(path))
        raw = (document.get("config") or {}).get(CONFIG_KEY) or {}
        if not isinstance(raw, dict):
            raise UserError(f"{source} must be a mapping of ingest settings")
        base = path.parent
    else:
        source, raw, base = "defaults", {}, Path(".")
    settings = _validate(raw, source)
    settings = settings.model_copy(update=_relative_to(settings, base))
    if overrides:
        merged = {**settings.model_dump(by_alias=True), **overrides}
        settings = _validate(merged, "command-line flags")
    return settings


def _read_mapping(path: Path, source: str) -> dict[str, Any]:
    data = load_document(path, "config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config {source} must hold a mapping of ingest settings")
    return data


def _validate(raw: Mapping[str, Any], source: str) -> IngestSettings:
    try:
        return IngestSettings.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            known = ", ".join(
                sorted(field.alias or name for name, field in IngestSettings.model_fields.items())
            )
            raise UserError(
                f"config {source}: unknown key {where!r}; known keys: {known}"
            ) from None
        got = first.get("input")
        raise UserError(f"config {source}: {where}: {first['msg']} (got {got!r})") from None


def _relative_to(settings: IngestSettings, base: Path) -> dict[str, Any]:
    def resolve(path: Path) -> Path:
        return path if path.is_absolute() or base == Path(".") else base / path

    return {
        "metadata_schema": settings.metadata_schema and resolve(settings.metadata_schema),
        "metadata_files": [resolve(path) for path in settings.metadata_files],
    }
