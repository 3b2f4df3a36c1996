"""Reading the YAML/JSON files users write (settings, metadata schemas) with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import UserError


def load_document(path: Path, what: str) -> Any:
    """The parsed content of `path` (JSON for `.json`, else YAML); `what` names it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise UserError(f"cannot read {what} {path}: {reason}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{what} {path} is not valid JSON: {error.msg} at line {error.lineno}"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "cannot parse"
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{what} {path} is not valid YAML: {problem}{where}") from None
