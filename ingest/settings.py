"""Per-environment ingest settings: the `encord-s3:ingest` mapping in `Pulumi.<stack>.yaml`,
or a `--config` YAML/JSON file holding the same mapping, then command-line overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.documents import load_document
from ingest.encord_format import (
    MAX_ITEMS_PER_FILE,
    MAX_JOB_ENTRIES_ENTERPRISE,
    MAX_JOB_ENTRIES_TEAM,
)
from ingest.errors import UserError

CONFIG_KEY = "encord-s3:ingest"
# Where Pulumi.yaml lives in a checkout (the project installs editable).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHUNK_SIZE = 100_000
# The mirror's safety limits: a sync removing more than this many items, or this share of
# the items it mirrors, refuses unless `allowMassDelete` (see ingest/mirror/diff.py).
DEFAULT_MAX_DELETES = 1000
DEFAULT_MAX_DELETE_FRACTION = 0.1


class GroupRule(BaseModel):
    """Images directly inside a folder matching `folders` become one image group or sequence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folders: str = Field(
        min_length=1,
        description="glob over folder paths, e.g. 'scans/*' ('*' stays in one folder, '**' crosses)",
    )
    as_: Literal["imageGroup", "imageSequence"] = Field(alias="as")


def _flag(description: str, *, scope: str = "source", **flag: Any) -> dict[str, Any]:
    """A setting's help text and how its override flag is spelt (see `ingest.cli.options`):
    `name` (default: the camelCase key in kebab case), `metavar`, `append` for lists."""
    return {"description": description, "json_schema_extra": {"scope": scope, **flag}}


class IngestSettings(BaseModel):
    """Every ingest setting, declared once: its key, type, default and help. The override
    flags of every command are generated from these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    prefixes: list[str] | None = Field(
        default=None,
        **_flag(
            "key prefixes to scan (default: the stack's `prefixes` output, else the whole bucket)",
            name="--prefix",
            metavar="PREFIX",
            append=True,
        ),
    )
    exclude: list[str] = Field(
        default_factory=list,
        **_flag("globs over whole keys to skip, e.g. '**/*.tmp'", metavar="GLOB", append=True),
    )
    groups: list[GroupRule] = Field(
        default_factory=list,
        **_flag(
            "folders whose images form one image group or sequence",
            name="--group",
            metavar="GLOB=imageGroup|imageSequence",
            append=True,
        ),
    )
    dicom_series: bool = Field(
        default=True,
        alias="dicomSeries",
        **_flag(
            "group .dcm files into DICOM series (see dicomGrouping); false: one entry per file"
        ),
    )
    dicom_grouping: Literal["uid", "folder"] = Field(
        default="uid",
        alias="dicomGrouping",
        **_flag(
            "DICOM series by the SeriesInstanceUID in each file's header (uid: reads each "
            ".dcm file's first bytes), or the .dcm files of one folder (folder)"
        ),
    )
    metadata_schema: Path | None = Field(
        default=None,
        alias="metadataSchema",
        **_flag("custom-metadata schema file, applied to Encord before uploading", metavar="FILE"),
    )
    metadata_sidecars: bool = Field(
        default=True,
        alias="metadataSidecars",
        **_flag("read <key>.metadata.json beside each object", name="--sidecars"),
    )
    metadata_files: list[Path] = Field(
        default_factory=list,
        alias="metadataFiles",
        **_flag(
            'CSV (a `key` column) or JSONL (a "key" field) of metadata per object',
            name="--metadata",
            metavar="CSV|JSONL",
            append=True,
        ),
    )
    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE,
        ge=1,
        le=MAX_ITEMS_PER_FILE,
        alias="chunkSize",
        **_flag("URLs per manifest file", metavar="N"),
    )
    max_job_entries: int = Field(
        default=MAX_JOB_ENTRIES_TEAM,
        ge=1,
        le=MAX_JOB_ENTRIES_ENTERPRISE,
        alias="maxJobEntries",
        **_flag(
            f"entries per upload job (Encord: {MAX_JOB_ENTRIES_TEAM:,} on Team plans, "
            f"{MAX_JOB_ENTRIES_ENTERPRISE:,} on Enterprise)",
            metavar="N",
        ),
    )
    output_dir: Path = Field(
        default=Path("out/ingest"),
        alias="outputDir",
        **_flag("output directory: manifests, reports, the run state", name="--out", metavar="DIR"),
    )
    listing: Literal["fast", "paginator", "inventory"] = Field(
        default="fast",
        **_flag("object list source: the fast lister, boto3's paginator, or S3 Inventory"),
    )
    inventory_location: str | None = Field(
        default=None,
        alias="inventoryLocation",
        **_flag(
            "s3://bucket/prefix/source-bucket/config-id/ (default: the stack's `inventoryLocation`)",
            metavar="S3_URL",
        ),
    )
    inventory_max_age_hours: float = Field(
        default=48,
        gt=0,
        alias="inventoryMaxAgeHours",
        **_flag("an older inventory report is used with a warning", metavar="HOURS"),
    )
    scan_workers: int = Field(
        default=16,
        ge=1,
        le=64,
        alias="scanWorkers",
        **_flag("prefixes listed at once", metavar="N"),
    )
    # -- mirroring (ingest/mirror): what a sync does about objects gone, changed or moved --
    deletions: Literal["keep", "unlink", "delete"] = Field(
        default="keep",
        **_flag(
            "objects deleted from the bucket: keep their items, unlink them from the Dataset, "
            "or also delete the storage items (not those another Dataset uses)"
        ),
    )
    changes: Literal["metadata", "reimport"] = Field(
        default="metadata",
        **_flag(
            "objects overwritten with new content (new ETag): update metadata only, or replace "
            "the item (its annotations are lost with it)"
        ),
    )
    renames: Literal["repoint", "ignore"] = Field(
        default="repoint",
        **_flag(
            "an object gone and one new with the same size and ETag: re-point the item to the "
            "new key (annotations kept), or treat them as a deletion and an addition"
        ),
    )
    max_deletes: int = Field(
        default=DEFAULT_MAX_DELETES,
        ge=0,
        alias="maxDeletes",
        **_flag("refuse a sync that would unlink or delete more items than this", metavar="N"),
    )
    max_delete_fraction: float = Field(
        default=DEFAULT_MAX_DELETE_FRACTION,
        ge=0,
        le=1,
        alias="maxDeleteFraction",
        **_flag(
            "refuse a sync that would unlink or delete more than this share of the Dataset",
            metavar="FRACTION",
        ),
    )
    allow_mass_delete: bool = Field(
        default=False,
        alias="allowMassDelete",
        **_flag("let this sync exceed maxDeletes and maxDeleteFraction"),
    )
    watch_batch_size: int = Field(
        default=1000,
        ge=1,
        alias="watchBatchSize",
        **_flag("`watch`: S3 events per batch at most", scope="watch", metavar="N"),
    )
    watch_batch_seconds: float = Field(
        default=5,
        gt=0,
        alias="watchBatchSeconds",
        **_flag(
            "`watch`: seconds a batch waits for more events after its first",
            scope="watch",
            metavar="SECONDS",
        ),
    )
    integration: str | None = Field(
        default=None,
        **_flag(
            "Encord integration title (default: the stack's `integrationTitle`)",
            scope="encord",
            metavar="TITLE",
        ),
    )
    folder: str | None = Field(
        default=None, **_flag("Encord Files folder name", scope="encord", metavar="NAME")
    )
    dataset: str | None = Field(
        default=None, **_flag("Encord Dataset title", scope="encord", metavar="TITLE")
    )
    encord_domain: str | None = Field(
        default=None,
        alias="encordDomain",
        **_flag(
            "Encord API URL (default: $ENCORD_DOMAIN, else https://api.encord.com)",
            scope="encord",
            metavar="URL",
        ),
    )


def config_path(stack: str, directory: Path = Path(".")) -> Path:
    """`Pulumi.<stack>.yaml` for a stack named `org/project/stack` or just `stack`."""
    return directory / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"


def stack_file(stack: str) -> Path:
    """The stack's `Pulumi.<stack>.yaml`, next to `Pulumi.yaml` whatever the working
    directory: the nearest directory up from it holding either, else this project's root.
    A stack without its file is an error, never silently the defaults."""
    here = Path.cwd()
    directory = next(
        (
            candidate
            for candidate in (here, *here.parents)
            if (candidate / "Pulumi.yaml").is_file() or config_path(stack, candidate).is_file()
        ),
        PROJECT_ROOT,
    )
    path = config_path(stack, Path(".") if directory == here else directory)
    if not path.is_file():
        known = sorted(
            found.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for found in directory.glob("Pulumi.*.yaml")
        )
        raise UserError(
            f"stack {stack!r} has no {path.name} in {directory} (next to Pulumi.yaml): fix "
            f"--stack (stacks there: {', '.join(known) or 'none'}) or pass --config FILE"
        )
    return path


def load_settings(
    stack: str | None, config_file: Path | None, overrides: Mapping[str, Any]
) -> IngestSettings:
    """Settings from `config_file`, else the stack's `Pulumi.<stack>.yaml` (see `stack_file`),
    else defaults; `overrides` (keyed by the settings' camelCase names, from flags) win.
    Metadata paths in a file are relative to that file; `outputDir` is relative to the
    working directory."""
    if config_file is not None:
        source = str(config_file)
        raw = _read_mapping(config_file, source)
        base = config_file.parent
    elif stack:
        path = stack_file(stack)
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


def inapplicable(settings: IngestSettings) -> list[str]:
    """Warnings for settings given that the chosen listing source ignores."""
    if settings.listing == "inventory":
        return []
    ignored = [
        key
        for key, given in (
            ("inventoryLocation", settings.inventory_location is not None),
            (
                "inventoryMaxAgeHours",
                settings.inventory_max_age_hours
                != IngestSettings.model_fields["inventory_max_age_hours"].default,
            ),
        )
        if given
    ]
    return [
        f"{key} is ignored with listing {settings.listing!r}: it applies only to "
        "listing 'inventory' (--listing inventory)"
        for key in ignored
    ]


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
