"""Stage 3, group: classified objects (in key order) → entries, one per Encord data unit.

- `.dcm` files → one DICOM series per SeriesInstanceUID read from their headers (`dicomGrouping:
  uid`, see `ingest.plan.dicom`: emitted when the listing ends), or per folder (`dicomGrouping:
  folder`, the files directly inside one folder); `dicomSeries: false`: one entry per file.
- Images directly inside a folder matched by a `groups` rule → one image group, or an image
  sequence (an image group with `createVideo: true`).
- Everything else → one entry per object.

S3 lists keys in order, but a folder's direct children are not contiguous: its subfolders'
keys sort between them. So a grouped folder stays open until the listing moves past its
prefix; open folders are the current key's ancestors, so memory is bounded by depth × folder
size, never by the bucket.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ingest.encord_format import MAX_TITLE
from ingest.model import Entry
from ingest.plan.classify import DICOM
from ingest.plan.dicom import ReadDicomHeader, SeriesBuffer
from ingest.plan.globs import glob_matcher
from ingest.settings import GroupRule

_DIGITS = re.compile(r"(\d+)")
SEQUENCE_VIDEO = "a video in an image-sequence folder: the one Encord writes for the sequence"


class Item(NamedTuple):
    """One importable object; `sidecar` is the key of its `<key>.metadata.json`, if any,
    and `sidecar_etag` that sidecar's ETag as listed; `size` its size in bytes as listed."""

    key: str
    etag: str
    kind: str
    sidecar: str | None = None
    sidecar_etag: str | None = None
    size: int = 0


class Grouped(NamedTuple):
    """An entry (without metadata yet), the key a metadata table row uses for it (the
    object's key, or a group's folder path ending in '/'), and its sidecar's key and listed
    ETag if any."""

    entry: Entry
    name: str
    sidecar: str | None
    sidecar_etag: str | None = None


def title_for(name: str) -> str:
    """`name` itself when it fits Encord's 300 characters, else a stable shortened form.

    The hash suffix keeps shortened titles unique and identical across reruns.
    """
    if len(name) <= MAX_TITLE:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_TITLE - len(digest) - 1]}~{digest}"


def natural_key(key: str) -> list[str | int]:
    """Sort key putting frame-2 before frame-10: digit runs compare as numbers."""
    parts: list[str | int] = _DIGITS.split(key[key.rfind("/") + 1 :])
    parts[1::2] = [int(part) for part in parts[1::2]]
    return parts


class FolderRules:
    """Which folders group their files, per the settings' `groups`, `dicomSeries` and
    `dicomGrouping`."""

    def __init__(
        self,
        rules: Iterable[GroupRule],
        dicom_series: bool = True,
        dicom_grouping: str = "folder",
    ) -> None:
        self._rules = [(glob_matcher(rule.folders), rule.as_) for rule in rules]
        self.dicom_series = dicom_series
        self.dicom_by_uid = dicom_series and dicom_grouping == "uid"

    def image_mode(self, folder: str) -> str | None:
        """'imageGroup', 'imageSequence' or None for a folder path ending in '/' (first rule wins)."""
        path = folder.rstrip("/")
        for matches, mode in self._rules:
            if matches(path):
                return mode
        return None


def group(
    items: Iterable[Item],
    rules: FolderRules,
    url_for: Callable[[str], str],
    read_header: ReadDicomHeader | None = None,
    left_out: Callable[[str, str], None] | None = None,
) -> Iterator[Grouped]:
    """Entries in a deterministic order: single objects as listed, a group when its folder
    closes, DICOM series by UID when the listing ends. `url_for` turns a key into its object
    URL; `read_header` reads a DICOM file's header (needed for `dicomGrouping: uid`);
    `left_out(key, reason)` hears of objects not imported.

    A video inside an image-sequence folder is the one Encord writes for that sequence
    (`createVideo`), not data of the bucket's own: importing it would add an item on every
    sync after the first.

    Runs once per item: the single-object path is kept to a few local operations (positional
    `Entry`, `Grouped` built with `tuple.__new__`, the title checked inline)."""
    open_folders: dict[str, dict[str, list[Item]]] = {}  # folder → mode → frames
    last_folder, last_mode = None, None
    image_mode, dicom_series, new = rules.image_mode, rules.dicom_series, tuple.__new__
    series: SeriesBuffer | None = None
    if rules.dicom_by_uid:
        if read_header is None:
            raise ValueError("grouping DICOM series by UID needs a header reader")
        series = SeriesBuffer(read_header)
    for item in items:
        key, etag, kind, sidecar, sidecar_etag, size = item
        if open_folders:
            for folder in [folder for folder in open_folders if not key.startswith(folder)]:
                yield from _close(folder, open_folders.pop(folder), url_for)
        folder = key[: key.rfind("/") + 1]
        if folder != last_folder:
            last_folder, last_mode = folder, image_mode(folder)
        if kind == DICOM:
            if series is not None:
                series.add(key, etag, folder)
                continue
            if dicom_series:
                open_folders.setdefault(folder, {}).setdefault(DICOM, []).append(item)
                continue
            kind = "dicom_series"
        elif kind == "images" and last_mode is not None:
            open_folders.setdefault(folder, {}).setdefault(last_mode, []).append(item)
            continue
        elif kind == "videos" and last_mode == "imageSequence":
            if left_out is not None:
                left_out(key, SEQUENCE_VIDEO)
            continue
        title = key if len(key) <= MAX_TITLE else title_for(key)
        entry = Entry(kind, title, (key,), (url_for(key),), (etag,), None, False, (size,))
        yield new(Grouped, (entry, key, sidecar, sidecar_etag))
    for folder in list(open_folders):
        yield from _close(folder, open_folders.pop(folder), url_for)
    if series is not None:
        yield from _series_by_uid(series, url_for)


def _series_by_uid(series: SeriesBuffer, url_for: Callable[[str], str]) -> Iterator[Grouped]:
    """One entry per series, frames in InstanceNumber order, then by key."""
    for title, files, _ in series.series():
        frames = sorted(files, key=lambda f: (f[2] is None, f[2] or 0, natural_key(f[0]), f[0]))
        entry = Entry(
            kind="dicom_series",
            title=title_for(title),
            keys=tuple(key for key, _, _ in frames),
            urls=tuple(url_for(key) for key, _, _ in frames),
            etags=tuple(etag for _, etag, _ in frames),
        )
        yield Grouped(entry, title, None)


def _close(
    folder: str, modes: dict[str, list[Item]], url_for: Callable[[str], str]
) -> Iterator[Grouped]:
    for mode in sorted(modes):  # 'dicom' before 'image…': deterministic
        frames = sorted(modes[mode], key=lambda frame: natural_key(frame.key))
        # The folder path with its trailing '/' as title: no file's key ends in '/', so a
        # group's title never collides with a single object's. A folder holding both a
        # DICOM series and an image group gives the group a distinct suffix.
        name = folder or "/"
        if mode != DICOM and DICOM in modes:
            name += " (images)"
        entry = Entry(
            kind="dicom_series" if mode == DICOM else "image_groups",
            title=title_for(name),
            keys=tuple(frame.key for frame in frames),
            urls=tuple(url_for(frame.key) for frame in frames),
            etags=tuple(frame.etag for frame in frames),
            create_video=mode == "imageSequence",
            sizes=tuple(frame.size for frame in frames),
        )
        yield Grouped(entry, name, None)
