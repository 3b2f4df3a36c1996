"""The unit the pipeline passes between stages: one Encord data unit to import."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Encord's top-level manifest keys, one per data type (see Encord's JSON import format).
SINGLE_FILE_KINDS = ("videos", "images", "audio", "text", "pdf", "nifti")
MULTI_FILE_KINDS = ("image_groups", "dicom_series")
KINDS = SINGLE_FILE_KINDS + MULTI_FILE_KINDS
_KINDS = frozenset(KINDS)


@dataclass(frozen=True, slots=True, init=False)
class Entry:
    """One data unit: a single object, or the ordered frames of an image group / DICOM series.

    `urls` and `keys` are parallel: `urls[i]` is the Encord object URL of S3 key `keys[i]`.
    `etags` (same order) let a rerun notice that an object changed.

    Immutable. One is built per object listed, so construction is kept cheap: `__slots__`,
    and `__init__` stores through the slot descriptors (a frozen dataclass's generated
    `__init__` costs ~1 µs); the fingerprint is computed on first use only.
    """

    kind: str
    title: str
    keys: tuple[str, ...]
    urls: tuple[str, ...]
    etags: tuple[str, ...] = ()
    client_metadata: dict[str, Any] | None = None
    create_video: bool = False
    _fingerprint: str = field(default="", init=False, repr=False, compare=False)

    def __init__(
        self,
        kind: str,
        title: str,
        keys: tuple[str, ...],
        urls: tuple[str, ...],
        etags: tuple[str, ...] = (),
        client_metadata: dict[str, Any] | None = None,
        create_video: bool = False,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown manifest kind {kind!r}")
        if len(keys) != len(urls) or not urls:
            raise ValueError("an entry needs one URL per key, and at least one")
        _set_kind(self, kind)
        _set_title(self, title)
        _set_keys(self, keys)
        _set_urls(self, urls)
        _set_etags(self, etags)
        _set_client_metadata(self, client_metadata)
        _set_create_video(self, create_video)
        _set_fingerprint(self, "")

    @property
    def fingerprint(self) -> str:
        """Changes when anything Encord would import for this entry changes."""
        if not self._fingerprint:
            payload = json.dumps(
                [
                    self.kind,
                    self.title,
                    self.urls,
                    self.etags,
                    self.client_metadata,
                    self.create_video,
                ],
                sort_keys=True,
                separators=(",", ":"),
            )
            _set_fingerprint(self, hashlib.sha256(payload.encode()).hexdigest()[:32])
        return self._fingerprint

    def to_manifest(self) -> dict[str, Any]:
        """This entry in Encord's raw JSON import format (entry keys are camelCase)."""
        if self.kind in SINGLE_FILE_KINDS:
            entry: dict[str, Any] = {"objectUrl": self.urls[0], "title": self.title}
        else:
            entry = {"title": self.title}
            if self.kind == "image_groups":
                entry["createVideo"] = self.create_video
            entry.update({f"objectUrl_{i}": url for i, url in enumerate(self.urls)})
        if self.client_metadata:
            entry["clientMetadata"] = self.client_metadata
        return entry


# The slots' own setters: they bypass the frozen `__setattr__`, for `__init__` and the cache.
_set_kind = Entry.__dict__["kind"].__set__
_set_title = Entry.__dict__["title"].__set__
_set_keys = Entry.__dict__["keys"].__set__
_set_urls = Entry.__dict__["urls"].__set__
_set_etags = Entry.__dict__["etags"].__set__
_set_client_metadata = Entry.__dict__["client_metadata"].__set__
_set_create_video = Entry.__dict__["create_video"].__set__
_set_fingerprint = Entry.__dict__["_fingerprint"].__set__
