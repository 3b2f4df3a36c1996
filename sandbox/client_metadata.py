"""Check an item's `clientMetadata` against the organisation's metadata schema.

The schema is the SDK's wire form (encord/metadata_schema.py): `{key: {"ty": ..., ...}}`.
Keys the schema does not declare are accepted as they are (the schema types what it names);
declared keys must hold a value of their type. `null` is accepted for any key.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

Schema = dict[str, dict[str, Any]]


def schema_violations(metadata: Any, schema: Schema) -> list[str]:
    if not isinstance(metadata, dict):
        return ["clientMetadata must be a JSON object"]
    problems = []
    for key, value in metadata.items():
        option = schema.get(key)
        if option is None or value is None:
            continue
        problem = _check(option, value)
        if problem:
            problems.append(f"key {key!r}: {problem}")
    return problems


def _check(option: dict[str, Any], value: Any) -> str | None:
    kind = option.get("ty")
    if kind == "variant":
        kind = option.get("hint")
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else f"expected a number, got {value!r}"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"expected a boolean, got {value!r}"
    if kind == "varchar":
        if not isinstance(value, str):
            return f"expected a string, got {value!r}"
        limit = option.get("max_length", 8192)
        return None if len(value) <= limit else f"string longer than {limit} characters"
    if kind == "text":
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if kind == "datetime":
        return None if _is_iso_datetime(value) else f"expected an ISO 8601 date-time, got {value!r}"
    if kind == "uuid":
        return None if _is_uuid(value) else f"expected a UUID, got {value!r}"
    if kind == "enum":
        values = option.get("values", [])
        return None if value in values else f"{value!r} is not one of {sorted(values)}"
    if kind == "embedding":
        size = option.get("size")
        numbers = isinstance(value, list) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in value
        )
        if not numbers:
            return f"expected a list of {size} numbers"
        return None if len(value) == size else f"expected {size} numbers, got {len(value)}"
    if kind == "geospatial":
        return None if isinstance(value, dict) else f"expected a GeoJSON object, got {value!r}"
    if kind == "tombstone":
        return "the key has been deleted from the metadata schema"
    return None  # an option type this sandbox does not know: accept, as a newer server might


def _is_iso_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
