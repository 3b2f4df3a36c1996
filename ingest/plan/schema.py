"""The declarative custom-metadata schema file, and checking values against it offline.

A YAML or JSON mapping, metadata key → type, where a type is a name or a mapping:

    captured_at: datetime
    camera: {type: enum, values: [front, rear]}
    clip: {type: embedding, size: 512}

Scalar names: boolean, datetime, number, uuid, varchar, text (Encord's own names).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.documents import load_document
from ingest.encord_format import EMBEDDING_MAX, ENUM_MAX_VALUES, SCALARS, VARCHAR_MAX
from ingest.errors import UserError

_KEY = re.compile(r"[A-Za-z0-9 _.\-]+")


class KeySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["boolean", "datetime", "number", "uuid", "varchar", "text", "enum", "embedding"]
    values: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=ENUM_MAX_VALUES)
    size: int | None = Field(default=None, ge=1, le=EMBEDDING_MAX)

    @model_validator(mode="after")
    def _options_match_type(self) -> KeySpec:
        if (self.type == "enum") != (self.values is not None):
            raise ValueError("`values` goes with, and only with, type enum")
        if (self.type == "embedding") != (self.size is not None):
            raise ValueError("`size` goes with, and only with, type embedding")
        return self

    def describe(self) -> str:
        if self.type == "enum":
            return f"one of {list(self.values or ())}"
        if self.type == "embedding":
            return f"a list of {self.size} numbers"
        return {
            "boolean": "true or false",
            "datetime": "an ISO 8601 datetime",
            "number": "a number",
            "uuid": "a UUID",
            "varchar": f"a string of at most {VARCHAR_MAX} characters",
            "text": "a string",
        }[self.type]

    def accepts(self, value: Any) -> bool:
        kind = self.type
        if kind == "boolean":
            return isinstance(value, bool)
        if kind == "number":
            return _is_number(value)
        if kind == "embedding":
            return (
                isinstance(value, list)
                and len(value) == self.size
                and all(_is_number(number) for number in value)
            )
        if not isinstance(value, str):
            return False
        if kind == "varchar":
            return len(value) <= VARCHAR_MAX
        if kind == "enum":
            return value in (self.values or ())
        if kind == "datetime":
            return _parses(datetime.fromisoformat, value)
        if kind == "uuid":
            return _parses(uuid.UUID, value)
        return True  # text

    def from_text(self, text: str) -> Any:
        """A CSV cell as this type's JSON value (left as text when it doesn't parse)."""
        if self.type == "number":
            return _parse(float, text)
        if self.type == "boolean":
            return {"true": True, "false": False}.get(text.strip().lower(), text)
        if self.type == "embedding":
            return _parse(json.loads, text)
        return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parses(parse, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _parse(parse, text: str) -> Any:
    try:
        return parse(text)
    except ValueError:
        return text


class MetadataSchema(BaseModel):
    """Metadata key → its type."""

    model_config = ConfigDict(frozen=True)

    keys: dict[str, KeySpec]

    def check(self, metadata: dict[str, Any]) -> list[str]:
        """One message per value that doesn't match its key's declared type."""
        errors = []
        for name, value in metadata.items():
            spec = self.keys.get(name)
            if spec is not None and not spec.accepts(value):
                errors.append(
                    f"metadata key {name!r}: expected {spec.describe()} ({spec.type}), got {_short(value)}"
                )
        return errors


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def load_schema(path: Path) -> MetadataSchema:
    """Read and check a schema file; a problem is a `UserError` naming the file and key."""
    raw = load_document(path, "metadata schema")
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"metadata schema {path} must be a mapping of metadata key → type")
    keys = {}
    for name, spec in raw.items():
        name = str(name)
        if not _KEY.fullmatch(name) or name.startswith("$") or name == "keyframes":
            raise UserError(
                f"metadata schema {path}: key {name!r} is not allowed: use letters, digits, "
                "space, '-', '_', '.' (not 'keyframes')"
            )
        declared = {"type": spec} if isinstance(spec, str) else spec
        try:
            keys[name] = KeySpec.model_validate(declared)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            detail = f"{where}: {first['msg']}" if where else first["msg"]
            raise UserError(
                f"metadata schema {path}: key {name!r}: {detail} "
                f"(types: {', '.join(SCALARS)}, enum with values, embedding with size)"
            ) from None
    return MetadataSchema(keys=keys)
