"""Stage 5, manifest: entries → Encord's JSON import files (and CSV files for the web app).

Object URLs are the stack's `objectUrlPrefix` followed by the percent-encoded key (UTF-8,
'/' kept), so no URL holds whitespace and every URL maps back to exactly one key. Files are
written streaming: each entry goes to a per-kind spool file as soon as it arrives, and a
chunk is assembled from its spools when full, then renamed into place (atomic).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote

from ingest.model import KINDS, Entry

MANIFEST_GLOB = "manifest-*.json"
CSV_GLOB = "import-*.csv"
CSV_MAX_ROWS = 10_000  # Encord's limit per CSV file
_SAFE_KEY = re.compile(r"[A-Za-z0-9/_.~-]*")  # keys that need no percent-encoding


def object_url(prefix: str, key: str) -> str:
    """The URL Encord fetches `key` by, in the exact form of the stack's `objectUrlPrefix`."""
    if _SAFE_KEY.fullmatch(key):
        return prefix + key
    return prefix + quote(key, safe="/")


def key_from_url(prefix: str, url: str) -> str | None:
    """The S3 key behind an object URL of this prefix, or None if the URL isn't one."""
    if not url.startswith(prefix):
        return None
    return unquote(url[len(prefix) :], errors="strict")


class ManifestWriter:
    """Writes `manifest-00001.json`, … into `directory`, at most `chunk_size` URLs each.

    A chunk closes before an entry that would push it past `chunk_size` URLs, so a group is
    never split; a group larger than `chunk_size` gets a file of its own.
    """

    def __init__(self, directory: Path, chunk_size: int) -> None:
        self.directory = directory
        self.chunk_size = chunk_size
        self.paths: list[Path] = []
        self._spools: dict[str, IO[str]] = {}
        self._urls = 0
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, entry: Entry) -> None:
        if self._urls and self._urls + len(entry.urls) > self.chunk_size:
            self._finish_chunk()
        spool = self._spools.get(entry.kind)
        if spool is None:
            spool = self._spools[entry.kind] = tempfile.TemporaryFile(  # noqa: SIM115 (lives until the chunk closes)
                "w+", encoding="utf-8", dir=self.directory
            )
        else:
            spool.write(",")
        spool.write(json.dumps(entry.to_manifest(), ensure_ascii=False, separators=(",", ":")))
        self._urls += len(entry.urls)

    def close(self) -> list[Path]:
        """Finish the last chunk and delete manifests left over from a larger earlier run."""
        if self._urls:
            self._finish_chunk()
        _remove_stale(self.directory, MANIFEST_GLOB, self.paths)
        return self.paths

    def _finish_chunk(self) -> None:
        path = self.directory / f"manifest-{len(self.paths) + 1:05d}.json"
        with _atomic(path) as out:
            out.write("{")
            for kind in KINDS:
                spool = self._spools.pop(kind, None)
                if spool is None:
                    continue
                out.write(f'"{kind}":[')
                spool.seek(0)
                shutil.copyfileobj(spool, out, 1 << 20)
                spool.close()
                out.write("],")
            out.write('"skip_duplicate_urls":true}\n')
        self.paths.append(path)
        self._urls = 0


def write_manifests(entries: Iterable[Entry], directory: Path, chunk_size: int) -> list[Path]:
    """Encord JSON manifests for `entries`, streaming; returns the files written, in order."""
    writer = ManifestWriter(directory, chunk_size)
    for entry in entries:
        writer.add(entry)
    return writer.close()


# Encord's CSV for the web app: the title column names the data type; `ObjectUrl` alone
# would mean "video". One row per URL; a group's rows share its title and stay in one file.
CSV_TITLE_COLUMNS = {
    "images": "Image title",
    "videos": "Video title",
    "audio": "Audio title",
    "text": "Text title",
    "pdf": "PDF title",
    "nifti": "NIfTI title",
    "image_groups": "Image group title",
    "dicom_series": "Series title",
}
CSV_HEADER = ["ObjectUrl", *CSV_TITLE_COLUMNS.values(), "Create video", "Client metadata"]


class CsvWriter:
    """Writes `import-00001.csv`, … with at most `CSV_MAX_ROWS` rows each."""

    def __init__(self, directory: Path, max_rows: int = CSV_MAX_ROWS) -> None:
        self.directory = directory
        self.max_rows = max_rows
        self.paths: list[Path] = []
        self._file: IO[str] | None = None
        self._writer = None
        self._rows = 0
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, entry: Entry) -> None:
        if self._file is None or self._rows + len(entry.urls) > self.max_rows:
            self._finish_file()
            self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives until the file is full)
                "w", encoding="utf-8", newline="", dir=self.directory, delete=False, suffix=".tmp"
            )
            self._writer = csv.writer(self._file)
            self._writer.writerow(CSV_HEADER)
        row = dict.fromkeys(CSV_HEADER, "")
        row[CSV_TITLE_COLUMNS[entry.kind]] = entry.title
        if entry.kind == "image_groups":
            row["Create video"] = "true" if entry.create_video else "false"
        if entry.client_metadata:
            row["Client metadata"] = json.dumps(entry.client_metadata, ensure_ascii=False)
        for url in entry.urls:
            row["ObjectUrl"] = url
            self._writer.writerow(row.values())
        self._rows += len(entry.urls)

    def close(self) -> list[Path]:
        self._finish_file()
        _remove_stale(self.directory, CSV_GLOB, self.paths)
        return self.paths

    def _finish_file(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        path = self.directory / f"import-{len(self.paths) + 1:05d}.csv"
        os.replace(self._file.name, path)
        self.paths.append(path)
        self._file, self._rows = None, 0


class _atomic:
    """Write to a temporary file beside `path`, then rename over it: readers never see half."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> IO[str]:
        self._file = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.path.parent, delete=False, suffix=".tmp"
        )
        return self._file

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._file.close()
            os.unlink(self._file.name)
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._file.name, self.path)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically."""
    with _atomic(path) as out:
        out.write(text)


def _remove_stale(directory: Path, pattern: str, keep: list[Path]) -> None:
    for path in set(directory.glob(pattern)) - set(keep):
        path.unlink()
