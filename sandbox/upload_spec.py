"""Turn an upload request into units: the raw JSON spec and the SDK's `DataUploadItems`.

Raw JSON (`externalFiles`, Encord's documented registration format): top-level snake_case
lists, camelCase entries, image-group and DICOM frames as `objectUrl_0`, `objectUrl_1`, ...
`DataUploadItems` (`dataItems`): camelCase lists whose entries carry `externalFileType`;
frames are `images[].url` / `dicomFiles[].url`.

A malformed spec is refused at submission (HTTP 400); problems with a single file (its URL,
type, title or metadata) only fail that unit, while the job runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import invalid
from sandbox.media import MediaKind

# Manifest key -> what each of its files must be, the item type, and Encord's action text.
MANIFEST_KEYS: dict[str, tuple[MediaKind, str, str]] = {
    "videos": (MediaKind.VIDEO, "video", "Uploading video"),
    "images": (MediaKind.IMAGE, "image", "Uploading image"),
    "image_groups": (MediaKind.IMAGE, "imageGroup", "Uploading image group"),
    "dicom_series": (MediaKind.DICOM, "dicomSeries", "Uploading DICOM series"),
    "audio": (MediaKind.AUDIO, "audio", "Uploading audio"),
    "text": (MediaKind.TEXT, "plainText", "Uploading text file"),
    "pdf": (MediaKind.PDF, "pdf", "Uploading PDF"),
    "nifti": (MediaKind.NIFTI, "nifti", "Uploading NIfTI file"),
}
GROUP_KEYS = ("image_groups", "dicom_series")
_MEDIA_METADATA_FIELDS = (
    "videoMetadata",
    "imageMetadata",
    "audioMetadata",
    "textMetadata",
    "pdfMetadata",
)
_FLAGS = {"skip_duplicate_urls", "upsert_metadata"}
_FRAME_KEY = re.compile(r"^objectUrl_(\d+)$")
# DataUploadItems list names -> manifest keys; the rest are types this sandbox cannot import.
_DATA_ITEMS_KEYS = {
    "videos": "videos",
    "images": "images",
    "imageGroups": "image_groups",
    "dicomSeries": "dicom_series",
    "audio": "audio",
    "text": "text",
    "pdf": "pdf",
    "nifti": "nifti",
}
_DATA_ITEMS_UNSUPPORTED = ("imageGroupsFromItems", "timeSeries", "scenes")


@dataclass
class UnitSpec:
    manifest_key: str
    urls: list[str]
    title: str | None = None
    client_metadata: Any = field(default_factory=dict)
    create_video: bool = False
    media_metadata: dict | None = None  # customer-provided: used as is, the file is not read


@dataclass
class UploadSpec:
    units: list[UnitSpec]
    skip_duplicate_urls: bool = False
    upsert_metadata: bool = False


def parse_request(body: dict[str, Any]) -> UploadSpec:
    """The spec of `POST storage/folders/{uuid}/data-upload-jobs` (or the legacy dataset call)."""
    if body.get("dataItems") is not None:
        spec = parse_data_items(body["dataItems"])
    elif body.get("externalFiles") is not None:
        spec = parse_raw_json(body["externalFiles"])
    elif body.get("files") is not None:  # legacy add_private_data_to_dataset_start
        spec = parse_raw_json(body["files"])
    else:
        raise invalid("The upload request has neither externalFiles nor dataItems.")
    if not spec.units:
        raise invalid("The upload spec lists no files.")
    return spec


def parse_raw_json(files: Any) -> UploadSpec:
    if not isinstance(files, dict):
        raise invalid("The upload spec must be a JSON object.")
    unknown = set(files) - set(MANIFEST_KEYS) - _FLAGS
    if unknown:
        raise invalid(f"Unknown keys in the upload spec: {', '.join(sorted(unknown))}.")
    units = []
    for key in MANIFEST_KEYS:
        for index, entry in enumerate(_entries(files, key)):
            where = f"{key}[{index}]"
            if key in GROUP_KEYS:
                frames = sorted(
                    (int(match[1]), value)
                    for name, value in entry.items()
                    if (match := _FRAME_KEY.match(name))
                )
                urls = [url for _, url in frames]
                if not urls:
                    raise invalid(f"{where} has no objectUrl_0, objectUrl_1, ... frames.")
            else:
                urls = [entry.get("objectUrl")]
            units.append(_unit(key, urls, entry, where))
    return UploadSpec(
        units,
        skip_duplicate_urls=_flag(files, "skip_duplicate_urls"),
        upsert_metadata=_flag(files, "upsert_metadata"),
    )


def parse_data_items(items: Any) -> UploadSpec:
    if not isinstance(items, dict):
        raise invalid("dataItems must be an object.")
    for name in _DATA_ITEMS_UNSUPPORTED:
        if items.get(name):
            raise invalid(f"The sandbox does not import {name}.")
    units = []
    for name, key in _DATA_ITEMS_KEYS.items():
        for index, entry in enumerate(_entries(items, name)):
            where = f"dataItems.{name}[{index}]"
            if key == "image_groups":
                urls = [frame.get("url") for frame in _frames(entry, "images", where)]
            elif key == "dicom_series":
                urls = [frame.get("url") for frame in _frames(entry, "dicomFiles", where)]
            else:
                urls = [entry.get("objectUrl")]
            units.append(_unit(key, urls, entry, where))
    return UploadSpec(
        units,
        skip_duplicate_urls=_flag(items, "skipDuplicateUrls"),
        upsert_metadata=_flag(items, "upsertMetadata"),
    )


def _entries(container: dict, name: str) -> list[dict]:
    entries = container.get(name) or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise invalid(f"{name} must be a list of objects.")
    return entries


def _frames(entry: dict, name: str, where: str) -> list[dict]:
    frames = entry.get(name)
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        raise invalid(f"{where}.{name} must be a non-empty list of objects.")
    return frames


def _unit(key: str, urls: list, entry: dict, where: str) -> UnitSpec:
    if not all(isinstance(url, str) and url for url in urls):
        raise invalid(f"{where} needs an objectUrl string for every file.")
    title = entry.get("title")
    media_metadata = next((entry[f] for f in _MEDIA_METADATA_FIELDS if entry.get(f)), None)
    if title is not None and not isinstance(title, str):
        raise invalid(f"{where}.title must be a string.")
    return UnitSpec(
        manifest_key=key,
        urls=urls,
        title=title,
        client_metadata=entry.get("clientMetadata") or {},
        create_video=bool(entry.get("createVideo", False)),
        media_metadata=media_metadata if isinstance(media_metadata, dict) else None,
    )


def _flag(container: dict, name: str) -> bool:
    value = container.get(name, False)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false.")
    return value
