"""The unit the pipeline passes between stages: one Encord data unit to import."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.encord_format import KINDS, SINGLE_FILE_KINDS

# Reads an object's body: (key, ETag as listed or None) → bytes. The ETag lets a caching
# reader (`RunState.cached_sidecars`) skip the GET of a sidecar it has already read.
ReadObject = Callable[[str, str | None], bytes]
_KINDS = frozenset(KINDS)
# The bytes `json.dumps` writes as they are inside a string: printable ASCII but the quote
# and the backslash.
_WRITTEN_AS_IS = bytes(set(range(0x20, 0x7F)) - set(b'"\\'))


@dataclass(slots=True, init=False)
class Entry:
    """One data unit: a single object, or the ordered frames of an image group / DICOM series.

    `urls` and `keys` are parallel: `urls[i]` is the Encord object URL of S3 key `keys[i]`.
    `etags` (same order) let a rerun notice that an object changed; `sizes` (same order, or
    empty when unknown) with them let it recognise a moved object (`ingest.mirror.diff`).
    Neither the sizes nor anything derived from them reaches a manifest or the fingerprint.

    Treat it as immutable: never assign to a field (the fingerprint is cached), make a
    changed copy with `dataclasses.replace`. It is not `frozen` because one is built per
    object listed: a frozen dataclass's `__init__` goes through `object.__setattr__` per
    field, where plain stores into `__slots__` cost much less (`bench/README.md`). Hashable by its
    fingerprint (equal entries have equal fingerprints), client metadata included.
    """

    kind: str
    title: str
    keys: tuple[str, ...]
    urls: tuple[str, ...]
    etags: tuple[str, ...] = ()
    client_metadata: dict[str, Any] | None = None
    create_video: bool = False
    sizes: tuple[int, ...] = field(default=(), compare=False)
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
        sizes: tuple[int, ...] = (),
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown manifest kind {kind!r}")
        if len(keys) != len(urls) or not urls:
            raise ValueError("an entry needs one URL per key, and at least one")
        self.kind = kind
        self.title = title
        self.keys = keys
        self.urls = urls
        self.etags = etags
        self.client_metadata = client_metadata
        self.create_video = create_video
        self.sizes = sizes
        self._fingerprint = ""

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def fingerprint(self) -> str:
        """Changes when anything Encord would import for this entry changes."""
        if not self._fingerprint:
            self._fingerprint = hashlib.sha256(self._fingerprinted()).hexdigest()[:32]
        return self._fingerprint

    def _fingerprinted(self) -> bytes:
        """The JSON the fingerprint hashes, UTF-8. Written here when `json.dumps` would write
        each string as it is (no metadata, no character to escape): one is computed per
        object listed, and `json.dumps` costs several times this (`bench/README.md`)."""
        urls, etags = '","'.join(self.urls), '","'.join(self.etags)
        etags = f'"{etags}"' if self.etags else ""
        create_video = "true" if self.create_video else "false"
        text = f'["{self.kind}","{self.title}",["{urls}"],[{etags}],null,{create_video}]'.encode()
        # Verbatim when no string holds a quote, a backslash or a byte outside printable
        # ASCII: then all that is left of it without the bytes written as they are is the
        # quotes written here (one scan, in C).
        if self.client_metadata is None and text.translate(None, _WRITTEN_AS_IS) == b'"' * (
            4 + 2 * (len(self.urls) + len(self.etags))
        ):
            return text
        return json.dumps(
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
        ).encode()

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
