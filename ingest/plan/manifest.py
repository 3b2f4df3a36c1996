"""Stage 5, manifest: entries → Encord's JSON import files (and CSV files for the web app).

Object URLs are the stack's `objectUrlPrefix` followed by the percent-encoded key (UTF-8,
'/' kept), so no URL holds whitespace and every URL maps back to exactly one key. Files are
written streaming and renamed into place when complete (atomic).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote

from ingest.encord_format import CSV_MAX_ROWS, KINDS, SINGLE_FILE_KINDS
from ingest.files import AtomicFile
from ingest.model import Entry

MANIFEST_GLOB = "manifest-*.json"
CSV_GLOB = "import-*.csv"
REPORT_FILE = "report.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9/_.~-]+")  # what quote(key, safe="/") would encode
_needs_no_escaping = re.compile(r"[A-Za-z0-9/_.~-]*").fullmatch  # faster than _UNSAFE.search
_PERCENT = [f"%{byte:02X}" for byte in range(256)]
_BUFFERED = 2000  # entries or rows gathered before one write: fewer, larger writes
# Reused: building an encoder per call costs more than encoding a small value.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_string = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept
_SINGLE_FILE_KINDS = frozenset(SINGLE_FILE_KINDS)


class EntryView(Protocol):
    """What the writers read of an entry: an `Entry` in this process, or the
    `rendering.EntryFields` tuple the rendering child rebuilds from the pipe."""

    @property
    def kind(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def urls(self) -> tuple[str, ...]: ...
    @property
    def client_metadata(self) -> dict[str, Any] | None: ...
    @property
    def create_video(self) -> bool: ...


def object_url(prefix: str, key: str) -> str:
    """The URL Encord fetches `key` by, in the exact form of the stack's `objectUrlPrefix`:
    the key's UTF-8 bytes percent-encoded except unreserved characters and '/'."""
    return object_urls(prefix)(key)


def object_urls(prefix: str) -> Callable[[str], str]:
    """`partial(object_url, prefix)`, one call layer shorter (it runs once per key)."""

    def url_for(key: str) -> str:
        if _needs_no_escaping(key) is not None:
            return prefix + key
        return prefix + _UNSAFE.sub(_percent_encoded, key)

    return url_for


def _percent_encoded(match: re.Match[str]) -> str:
    return "".join([_PERCENT[byte] for byte in match.group().encode()])


def key_from_url(prefix: str, url: str) -> str | None:
    """The S3 key behind an object URL of this prefix, or None if the URL isn't one."""
    if not url.startswith(prefix):
        return None
    return unquote(url[len(prefix) :], errors="strict")


def entry_json(entry: EntryView) -> str:
    """`entry.to_manifest()` as compact JSON, byte for byte, built directly (the hot path)."""
    kind, title, urls, metadata = entry.kind, entry.title, entry.urls, entry.client_metadata
    if kind in _SINGLE_FILE_KINDS:
        text = '{"objectUrl":' + _string(urls[0]) + ',"title":' + _string(title)
    else:
        parts = ['{"title":', _string(title)]
        if kind == "image_groups":
            parts.append(',"createVideo":true' if entry.create_video else ',"createVideo":false')
        parts.extend([f',"objectUrl_{i}":{_string(url)}' for i, url in enumerate(urls)])
        text = "".join(parts)
    if metadata:
        return text + ',"clientMetadata":' + _JSON.encode(metadata) + "}"
    return text + "}"


class ManifestWriter:
    """Writes `manifest-00001.json`, … into `directory`, at most `chunk_size` URLs each, and
    at most `max_entries` entries if given (an upload job's size).

    A chunk closes before an entry that would push it past `chunk_size` URLs, so a group is
    never split; a group larger than `chunk_size` gets a file of its own. Entries wait in
    small per-kind buffers, then go to per-kind spool files; a full chunk is assembled from
    its spools, so memory holds a few thousand entries per kind at most, never a chunk.
    """

    def __init__(self, directory: Path, chunk_size: int, max_entries: int | None = None) -> None:
        self.directory = directory
        self.chunk_size = chunk_size
        self.max_entries = max_entries
        self.paths: list[Path] = []
        self._spools: dict[str, IO[str]] = {}
        self._buffers: dict[str, list[str]] = {kind: [] for kind in KINDS}
        self._urls = 0
        self._entries = 0
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, entry: EntryView) -> None:
        urls, kind = entry.urls, entry.kind
        count = len(urls)
        total = self._urls + count
        if self._urls and (
            total > self.chunk_size
            or (self.max_entries is not None and self._entries >= self.max_entries)
        ):
            self._finish_chunk()
            total = count
        self._urls = total
        self._entries += 1
        buffer = self._buffers[kind]
        if count == 1 and kind in _SINGLE_FILE_KINDS and not entry.client_metadata:
            # `entry_json` of the most common entry, inline: this runs once per entry.
            buffer.append(f'{{"objectUrl":{_string(urls[0])},"title":{_string(entry.title)}}}')
        else:
            buffer.append(entry_json(entry))
        if len(buffer) >= _BUFFERED:
            self._spill()

    def close(self) -> list[Path]:
        """Finish the last chunk; returns every manifest written, in order."""
        if self._urls:
            self._finish_chunk()
        return self.paths

    def _spill(self) -> None:
        for kind, buffer in self._buffers.items():
            if not buffer:
                continue
            spool = self._spools.get(kind)
            if spool is None:
                spool = self._spools[kind] = tempfile.TemporaryFile(  # noqa: SIM115 (lives until the chunk closes)
                    "w+", encoding="utf-8", dir=self.directory
                )
                spool.write(",".join(buffer))
            else:
                spool.write("," + ",".join(buffer))
            buffer.clear()

    def _finish_chunk(self) -> None:
        self._spill()
        path = self.directory / f"manifest-{len(self.paths) + 1:05d}.json"
        with AtomicFile(path) as out:
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
            # Reruns resend an entry only when it changed: its URLs are skipped as duplicates,
            # and its metadata, the bucket's being the source of truth, replaces Encord's.
            out.write('"skip_duplicate_urls":true,"upsert_metadata":true}\n')
        self.paths.append(path)
        self._urls = self._entries = 0


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
# Each row: URL, the title in its type's column, createVideo, clientMetadata; the commas
# around the title are fixed per type. URLs are percent-encoded, so never need quoting.
_CSV_GAPS = {
    kind: ("," * index, "," * (len(CSV_HEADER) - 2 - index))
    for kind, index in (
        (kind, CSV_HEADER.index(column)) for kind, column in CSV_TITLE_COLUMNS.items()
    )
}
_CSV_SPECIAL = re.compile(r'[",\r\n]')
_csv_special = _CSV_SPECIAL.search
# Per kind, what goes around the title: the gaps, then the `Create video` column (image
# groups only: keyed by the flag) and the comma before `Client metadata`.
_CSV_AROUND: dict[str | bool, tuple[str, str]] = {
    kind: (before, after + ",") for kind, (before, after) in _CSV_GAPS.items()
}
_CSV_AROUND[True] = (_CSV_GAPS["image_groups"][0], _CSV_GAPS["image_groups"][1] + "true,")
_CSV_AROUND[False] = (_CSV_GAPS["image_groups"][0], _CSV_GAPS["image_groups"][1] + "false,")


def csv_field(text: str) -> str:
    """`text` as one CSV field, quoted only when needed (as the csv module's QUOTE_MINIMAL)."""
    if _csv_special(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


class CsvWriter:
    """Writes `import-00001.csv`, … with at most `CSV_MAX_ROWS` rows each, atomically."""

    def __init__(self, directory: Path, max_rows: int = CSV_MAX_ROWS) -> None:
        self.directory = directory
        self.max_rows = max_rows
        self.paths: list[Path] = []
        self._file: AtomicFile | None = None
        self._lines: list[str] = []
        self._rows = 0
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, entry: EntryView) -> None:
        urls = entry.urls
        rows = self._rows + len(urls)
        file = self._file
        if rows > self.max_rows or file is None:
            self._finish_file()
            file = self._file = AtomicFile(self.directory / f"import-{len(self.paths) + 1:05d}.csv")
            self._lines.append(",".join(CSV_HEADER) + "\r\n")
            rows = len(urls)
        self._rows = rows
        title, metadata, kind = entry.title, entry.client_metadata, entry.kind
        if _csv_special(title) is not None:
            title = '"' + title.replace('"', '""') + '"'
        before, after = _CSV_AROUND[bool(entry.create_video) if kind == "image_groups" else kind]
        lines = self._lines
        if metadata:
            rest = f"{before}{title}{after}{csv_field(_JSON.encode(metadata))}\r\n"
            lines.extend([url + rest for url in urls])
        elif len(urls) == 1:
            lines.append(f"{urls[0]}{before}{title}{after}\r\n")
        else:
            rest = f"{before}{title}{after}\r\n"
            lines.extend([url + rest for url in urls])
        if len(lines) >= _BUFFERED:
            self._flush(file)

    def close(self) -> list[Path]:
        self._finish_file()
        return self.paths

    def _flush(self, file: AtomicFile) -> None:
        file.file.write("".join(self._lines))
        self._lines.clear()

    def _finish_file(self) -> None:
        file = self._file
        if file is None:
            return
        self._flush(file)
        file.commit()
        self.paths.append(file.path)
        self._file, self._rows = None, 0


def publish(staging: Path, out: Path) -> None:
    """Move a complete plan from `staging` into `out`, replacing the previous plan's files
    (manifests, CSV files, report) and deleting those it no longer has; then drop `staging`.

    Until this runs, `out` still holds the previous plan whole, so a failed run never leaves
    a mix of new and old manifests."""
    for pattern in (MANIFEST_GLOB, f"csv/{CSV_GLOB}", REPORT_FILE):
        fresh = {path.relative_to(staging) for path in staging.glob(pattern)}
        for name in sorted(fresh):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, out / name)
        for path in out.glob(pattern):
            if path.relative_to(out) not in fresh:
                path.unlink()
    shutil.rmtree(staging)
