"""Apply a declared metadata schema to Encord's organisation schema, merge-safe.

The SDK's `save()` replaces the whole schema, so we start from the schema Encord holds,
add what is declared and missing (keys, enum options), keep every other key, and refuse a
type conflict instead of overwriting it.
"""

from __future__ import annotations

from encord.metadata_schema import MetadataSchema as EncordSchema
from encord.metadata_schema import MetadataSchemaError

from ingest.encord.client import EncordClient
from ingest.errors import UserError, first_line
from ingest.plan.schema import MetadataSchema


def merge(declared: MetadataSchema, remote: EncordSchema, source: str) -> list[str]:
    """Add `declared` to `remote` in place; returns the changes made, in key order.

    All conflicts are found before anything changes, so a conflict leaves `remote` untouched.
    """
    conflicts = []
    for name, spec in sorted(declared.keys.items()):
        if not remote.has_key(name):
            continue
        if remote.is_key_deleted(name):
            conflicts.append(f"{name!r} was deleted in Encord; restore it there or rename it here")
            continue
        existing = remote.get_key_type(name)
        if existing != spec.type:
            conflicts.append(f"{name!r} is {existing} in Encord but {spec.type} in {source}")
        elif spec.type == "embedding" and (size := remote.get_embedding_size(name)) != spec.size:
            conflicts.append(
                f"{name!r} is an embedding of size {size} in Encord but {spec.size} in {source}"
            )
    if conflicts:
        raise UserError(
            f"metadata schema {source} conflicts with Encord's: {'; '.join(conflicts)} "
            "(nothing was changed; align the file with Encord's types)"
        )
    changes = []
    for name, spec in sorted(declared.keys.items()):
        if not remote.has_key(name):
            if spec.type == "enum":
                remote.add_enum(name, values=list(spec.values or ()))
            elif spec.type == "embedding":
                assert spec.size is not None  # `KeySpec` requires a size for an embedding
                remote.add_embedding(name, size=spec.size)
            else:
                remote.add_scalar(name, data_type=spec.type)
            changes.append(f"added {name!r} ({spec.type})")
        elif spec.type == "enum":
            missing = sorted(set(spec.values or ()) - set(remote.get_enum_options(name)))
            if missing:
                remote.add_enum_options(name, values=missing)
                changes.append(f"added options {missing} to enum {name!r}")
    return changes


def apply(
    client: EncordClient, declared: MetadataSchema, source: str, save: bool = True
) -> list[str]:
    """Merge `declared` into the organisation's schema and save it, only when something
    changed; returns the changes. With `save=False` only checks that it would merge.

    Never retried as a whole: a second attempt would find the keys already merged into the
    schema it read and never save. The SDK's transport retries the post itself; a rerun
    applies the file afresh."""
    remote = client.metadata_schema()
    try:
        changes = merge(declared, remote, source)
    except MetadataSchemaError as error:  # e.g. an enum grown past the SDK's 256 options
        raise UserError(
            f"the SDK refused the metadata schema from {source}: {first_line(error)}"
        ) from None
    if changes and save:
        client.save_metadata_schema(remote, source)
    return changes
