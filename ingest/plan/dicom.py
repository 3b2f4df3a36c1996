"""DICOM series by SeriesInstanceUID, read from each file's header (`dicomGrouping: uid`).

Encord imports one `dicom_series` element as "one or more DICOM series", so a folder holding
two series (a PACS export) must become two entries, and one series spread over several
folders one entry. Only a file's first bytes are read (a ranged GET) and parsed up to the two
tags needed; the run caches them per ETag (`RunState.cached_dicom_headers`).

A series is complete only when the listing ends (its files may sit in any folder), so the
`.dcm` items wait in a temporary SQLite file, created with the first one: a listing without
DICOM files pays nothing.
"""

from __future__ import annotations

import io
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ingest.listing.s3_errors import s3_errors

# Bytes read first, then once more if the tags were not in them (large private elements).
HEADER_BYTES = (64 * 1024, 1024 * 1024)
_TAGS = ["SeriesInstanceUID", "InstanceNumber"]


class DicomHeader(NamedTuple):
    series_uid: str | None
    instance_number: int | None


# (key, ETag as listed) → the file's header; the ETag lets a cache answer.
ReadDicomHeader = Callable[[str, str], DicomHeader]


def parse_header(data: bytes) -> DicomHeader:
    """SeriesInstanceUID and InstanceNumber from a file's first bytes; (None, None) for
    what is not DICOM or holds neither tag in `data` (truncation is expected)."""
    # Imported here: a plan without DICOM files (or grouping them by folder) never needs it.
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        dataset = dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=_TAGS, force=True
        )
        uid = dataset.get("SeriesInstanceUID")
        number = dataset.get("InstanceNumber")
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError):
        return DicomHeader(None, None)
    try:
        instance = int(number) if number not in (None, "") else None
    except (TypeError, ValueError):
        instance = None
    return DicomHeader(str(uid).strip() or None if uid else None, instance)


def s3_header_reader(s3: Any, bucket: str) -> ReadDicomHeader:
    """Reads a header with a ranged GET (`HEADER_BYTES`), a longer one if the tags were
    beyond the first."""

    def read(key: str, etag: str) -> DicomHeader:
        del etag  # for caching wrappers
        header = DicomHeader(None, None)
        for size in HEADER_BYTES:
            with s3_errors(
                "reading the DICOM header of",
                f"s3://{bucket}/{key}",
                needs="s3:GetObject on the bucket, and the object must still exist",
            ):
                response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
                data = response["Body"].read()
            header = parse_header(data)
            if header.series_uid is not None or len(data) < size:
                break
        return header

    return read


class SeriesBuffer:
    """`.dcm` items (key, ETag, folder) until the listing ends, then one series per
    SeriesInstanceUID: files without one form a series per folder."""

    def __init__(self, read_header: ReadDicomHeader) -> None:
        self._read_header = read_header
        self._file: Any = None
        self._db: sqlite3.Connection | None = None

    def add(self, key: str, etag: str, folder: str) -> None:
        if self._db is None:
            self._file = tempfile.NamedTemporaryFile(suffix=".sqlite")  # noqa: SIM115 (closed in series())
            self._db = sqlite3.connect(self._file.name)
            self._db.execute(
                "CREATE TABLE files (series TEXT, key TEXT PRIMARY KEY, etag TEXT,"
                " folder TEXT, instance INTEGER)"
            )
        header = self._read_header(key, etag)
        series = f"uid:{header.series_uid}" if header.series_uid else f"folder:{folder}"
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
            (series, key, etag, folder, header.instance_number),
        )

    def series(self) -> Iterator[tuple[str, list[tuple[str, str, int | None]], str]]:
        """(title, frames as (key, ETag, InstanceNumber), series UID or '') per series, by
        title. Title: the folder path when the series fills one folder alone,
        else the folders' common path followed by ` (series <UID>)`."""
        if self._db is None:
            return
        try:
            db = self._db
            db.execute("CREATE INDEX files_by_series ON files (series)")
            folders_alone = {
                folder
                for (folder,) in db.execute(
                    "SELECT folder FROM files GROUP BY folder HAVING count(DISTINCT series) = 1"
                )
            }
            titled = []
            for series, folders, first in db.execute(
                "SELECT series, count(DISTINCT folder), min(folder) FROM files GROUP BY series"
            ):
                uid = series[4:] if series.startswith("uid:") else ""
                if folders == 1 and first in folders_alone:
                    title = first or "/"
                else:
                    common = _common_folder(
                        [
                            f
                            for (f,) in db.execute(
                                "SELECT DISTINCT folder FROM files WHERE series = ?", (series,)
                            )
                        ]
                    )
                    title = f"{common or '/'} (series {uid or 'without SeriesInstanceUID'})"
                titled.append((title, series, uid))
            for title, series, uid in sorted(titled):
                rows = db.execute(
                    "SELECT key, etag, instance FROM files WHERE series = ?", (series,)
                ).fetchall()
                yield title, rows, uid
        finally:
            self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._file.close()
            self._db = None


def _common_folder(folders: list[str]) -> str:
    parts = [folder.split("/")[:-1] for folder in folders]
    common: list[str] = []
    for names in zip(*parts, strict=False):
        if len(set(names)) != 1:
            break
        common.append(names[0])
    return "".join(f"{name}/" for name in common)
