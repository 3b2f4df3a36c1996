"""Stage 6, validate: check any manifest, ours or hand-written, against Encord's JSON import
format and limits. Every problem names the entry by its JSON path and says how to fix it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from ingest.encord_format import MAX_ITEMS_PER_FILE as MAX_ITEMS
from ingest.encord_format import MAX_TITLE, MAX_URL_BYTES
from ingest.encord_format import MAX_URLS_PER_FILE as MAX_URLS
from ingest.errors import UserError
from ingest.plan.classify import DICOM, classify

_FRAME = re.compile(r"objectUrl_(0|[1-9][0-9]*)")
_WHITESPACE = re.compile(r"\s")
_SCHEMES = ("https://", "http://", "s3://", "arn:aws:s3::")
_SURELY_SHORT = MAX_URL_BYTES // 4  # characters: at most 4 UTF-8 bytes each


class Problem(NamedTuple):
    path: str  # JSONPath of the entry or field, e.g. $.images[3].objectUrl
    message: str  # what is wrong, and the fix


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE)
    clientMetadata: dict[str, Any] | None = None

    def urls(self) -> list[str]:
        """The entry's object URLs, in frame order."""
        raise NotImplementedError  # every model in ENTRY_MODELS is a `_Single` or `_Frames`


class _Single(_Entry):
    objectUrl: str

    def urls(self) -> list[str]:
        return [self.objectUrl]


class _Video(_Single):
    videoMetadata: dict[str, Any] | None = None


class _Image(_Single):
    imageMetadata: dict[str, Any] | None = None


class _Audio(_Single):
    audioMetadata: dict[str, Any] | None = None


class _Text(_Single):
    textMetadata: dict[str, Any] | None = None


class _Pdf(_Single):
    pdfMetadata: dict[str, Any] | None = None


class _Frames(_Entry):
    """Image groups and DICOM series: a title and frames `objectUrl_0`, `objectUrl_1`, …"""

    model_config = ConfigDict(extra="allow")
    title: str = Field(min_length=1, max_length=MAX_TITLE)

    @model_validator(mode="after")
    def _frames_are_numbered(self) -> _Frames:
        extra = self.model_extra or {}
        for name, value in extra.items():
            if not _FRAME.fullmatch(name):
                raise ValueError(f"unknown field {name!r}: frames are objectUrl_0, objectUrl_1, …")
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a URL string")
        if not extra:
            raise ValueError("no frames: add objectUrl_0, objectUrl_1, …")
        numbers = sorted(int(name.split("_")[1]) for name in extra)
        if numbers != list(range(len(numbers))):
            raise ValueError("frames must be numbered objectUrl_0 … objectUrl_N without gaps")
        return self

    def urls(self) -> list[str]:
        extra = self.model_extra or {}
        return [extra[f"objectUrl_{i}"] for i in range(len(extra))]


class _ImageGroup(_Frames):
    createVideo: StrictBool = False


ENTRY_MODELS: dict[str, type[_Entry]] = {
    "videos": _Video,
    "images": _Image,
    "audio": _Audio,
    "text": _Text,
    "pdf": _Pdf,
    "nifti": _Single,
    "image_groups": _ImageGroup,
    "dicom_series": _Frames,
}
FLAGS = ("skip_duplicate_urls", "upsert_metadata")
# What the frames of a multi-file entry must be, when their extension says anything.
_FRAME_KINDS = {"image_groups": "images", "dicom_series": DICOM}


def validate_document(document: Any) -> tuple[list[Problem], int, int]:
    """(problems, entries, URLs) for a parsed manifest."""
    if not isinstance(document, dict):
        return (
            [Problem("$", "a manifest is a JSON object with keys such as 'images', 'videos'")],
            0,
            0,
        )
    problems: list[Problem] = []
    for name, value in document.items():
        if name in FLAGS:
            if not isinstance(value, bool):
                problems.append(Problem(f"$.{name}", "must be true or false"))
        elif name not in ENTRY_MODELS:
            known = ", ".join([*ENTRY_MODELS, *FLAGS])
            problems.append(Problem(f"$.{name}", f"unknown top-level key; use one of: {known}"))
        elif not isinstance(value, list):
            problems.append(Problem(f"$.{name}", "must be a list of entries"))
    titles: dict[str, str] = {}
    entries = urls = 0
    for kind, model in ENTRY_MODELS.items():
        listed = document.get(kind)
        if not isinstance(listed, list):
            continue
        for index, raw in enumerate(listed):
            path = f"$.{kind}[{index}]"
            entries += 1
            try:
                entry = model.model_validate(raw)
            except ValidationError as error:
                problems.extend(_explain(path, error))
                continue
            entry_urls = entry.urls()
            urls += len(entry_urls)
            problems.extend(_check_urls(path, kind, entry_urls))
            if entry.title is not None:
                first = titles.setdefault(entry.title, path)
                if first != path:
                    problems.append(
                        Problem(f"{path}.title", f"same title as {first}; make titles unique")
                    )
    if entries > MAX_ITEMS:
        problems.append(
            Problem("$", f"{entries} entries; Encord takes at most {MAX_ITEMS} per file: split it")
        )
    if urls > MAX_URLS:
        problems.append(
            Problem("$", f"{urls} URLs; Encord takes at most {MAX_URLS} per file: split it")
        )
    return problems, entries, urls


def entry_problems(path: str, kind: str, title: str, urls: Sequence[str]) -> list[Problem]:
    """The cheap per-entry checks of `validate_document`, for an entry built by the planner
    (its shape, and its kind as its extension says, are right by construction): the
    title's length and every URL's form."""
    for url in urls:  # the common case first: what `_url_problem` accepts, no regex
        # `split()` cuts at exactly what `\s` matches (`str.isspace`), and returns a URL it
        # doesn't cut as it is: `[url]` means no whitespace, and not empty.
        if len(url) > _SURELY_SHORT or not url.startswith(_SCHEMES) or url.split() != [url]:
            break
    else:
        if 0 < len(title) <= MAX_TITLE:
            return []
    problems = _check_urls(path, kind, urls, check_kind=False)
    if not 0 < len(title) <= MAX_TITLE:
        problems.append(Problem(f"{path}.title", f"must be 1 to {MAX_TITLE} characters long"))
    return problems


def _explain(path: str, error: ValidationError) -> list[Problem]:
    problems = []
    for detail in error.errors():
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]
        )
        kind = detail["type"]
        if kind == "missing":
            message = "required: add it"
        elif kind == "extra_forbidden":
            message = "unknown field: remove it or fix its spelling (camelCase, e.g. objectUrl)"
        elif kind == "string_too_long":
            message = f"longer than Encord's {MAX_TITLE} characters: shorten it"
        else:
            message = detail["msg"].removeprefix("Value error, ")
        problems.append(Problem(f"{path}{where}", message))
    return problems


def _check_urls(
    path: str, kind: str, urls: Sequence[str], check_kind: bool = True
) -> list[Problem]:
    problems = []
    for index, url in enumerate(urls):
        message = _url_problem(url, kind, check_kind)
        if message is not None:
            where = f"{path}.objectUrl_{index}" if kind in _FRAME_KINDS else f"{path}.objectUrl"
            problems.append(Problem(where, message))
    return problems


def _url_problem(url: str, kind: str, check_kind: bool) -> str | None:
    """What is wrong with one URL of a `kind` entry, and the fix; None if nothing."""
    if not url:
        return "empty URL: put the object's URL here"
    if _WHITESPACE.search(url):
        return "contains whitespace: percent-encode the key (' ' → %20)"
    if len(url.encode()) > MAX_URL_BYTES:
        return "longer than Encord's 16 KB per URL: shorten the key"
    if not url.startswith(_SCHEMES):
        return "not a URL: use https://<bucket>.s3.<region>.amazonaws.com/<key>"
    if check_kind:
        found, _ = classify(url.split("?", 1)[0])
        expected = _FRAME_KINDS.get(kind, kind)
        if found is not None and found != expected:
            return f"the extension says {found}, not {expected}: move it to the right list"
    return None


def validate_file(path: Path) -> tuple[list[Problem], int, int]:
    """Read and validate a manifest file; an unreadable or non-JSON file is a `UserError`."""
    try:
        with path.open("rb") as handle:
            document = json.load(handle)
    except OSError as error:
        raise UserError(f"cannot read manifest {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        detail = (
            f"{error.msg} at line {error.lineno} column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else "not UTF-8"
        )
        raise UserError(f"manifest {path} is not JSON: {detail}") from None
    return validate_document(document)
