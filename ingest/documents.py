"""Reading the YAML/JSON files users write (settings, metadata schemas) with one-line errors.

A key given twice in one mapping is an error (YAML and JSON parsers would silently keep the
last value)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import UserError


class _DuplicateKey(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives a key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    f"key {key!r} appears twice at line {key_node.start_mark.line + 1}"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise _DuplicateKey(f"key {key!r} appears twice")
        mapping[key] = value
    return mapping


def load_document(path: Path, what: str) -> Any:
    """The parsed content of `path` (JSON for `.json`, else YAML); `what` names it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise UserError(f"cannot read {what} {path}: {reason}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_keys)
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as error:
        raise UserError(f"{what} {path}: {error}; keep one") from None
    except json.JSONDecodeError as error:
        raise UserError(
            f"{what} {path} is not valid JSON: {error.msg} at line {error.lineno}"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "cannot parse"
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{what} {path} is not valid YAML: {problem}{where}") from None
