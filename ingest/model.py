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


@dataclass(frozen=True)
class Entry:
    """One data unit: a single object, or the ordered frames of an image group / DICOM series.

    `urls` and `keys` are parallel: `urls[i]` is the Encord object URL of S3 key `keys[i]`.
    `etags` (same order) let a rerun notice that an object changed.
    """

    kind: str
    title: str
    keys: tuple[str, ...]
    urls: tuple[str, ...]
    etags: tuple[str, ...] = ()
    client_metadata: dict[str, Any] | None = None
    create_video: bool = False
    _fingerprint: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown manifest kind {self.kind!r}")
        if len(self.keys) != len(self.urls) or not self.urls:
            raise ValueError("an entry needs one URL per key, and at least one")

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
            object.__setattr__(
                self, "_fingerprint", hashlib.sha256(payload.encode()).hexdigest()[:32]
            )
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
