"""Stage 4, metadata: each entry's `clientMetadata`, from sidecars and/or a CSV/JSONL table.

- Sidecar: `<key>.metadata.json` beside a single object (Encord's own convention), read from S3.
- Table: CSV with a `key` column, or JSONL objects with a `key` field; every other column or
  field is a metadata key. Rows for an image group or DICOM series use the group's folder
  path, ending in '/', as `key`. The table is loaded into a temporary SQLite
  file, so memory doesn't grow with it. Table values win over sidecar values.

Values are checked against the metadata schema file; an entry with a wrong value is
reported (object key, metadata key, expected type) and left out of the manifest.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from ingest.errors import UserError
from ingest.model import Entry, ReadObject
from ingest.plan.group import Grouped
from ingest.plan.report import SAMPLE_LIMIT, PlanReport
from ingest.plan.schema import MetadataSchema

_BATCH = 10_000  # table rows inserted per `executemany`


class MetadataTable:
    """Object key → metadata, from CSV/JSONL files, in a temporary on-disk SQLite index."""

    def __init__(self, files: Iterable[Path], schema: MetadataSchema | None) -> None:
        self._file = tempfile.NamedTemporaryFile(suffix=".sqlite")  # noqa: SIM115 (closed in close())
        self._db = sqlite3.connect(self._file.name, check_same_thread=False)
        # `used`: the row was asked for by an entry; the others match no object (reported).
        self._db.execute(
            "CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0)"
        )
        for path in files:
            self._load(path, schema)
        self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM metadata WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE metadata SET used = 1 WHERE key = ?", (key,))
        return json.loads(row[0])

    def unmatched(self, sample: int) -> tuple[int, list[str]]:
        """(how many rows no entry asked for, the first `sample` of their keys)."""
        count = self._db.execute("SELECT COUNT(*) FROM metadata WHERE used = 0").fetchone()[0]
        keys = self._db.execute(
            "SELECT key FROM metadata WHERE used = 0 ORDER BY key LIMIT ?", (sample,)
        ).fetchall()
        return count, [key for (key,) in keys]

    def close(self) -> None:
        self._db.close()
        self._file.close()

    def _load(self, path: Path, schema: MetadataSchema | None) -> None:
        rows = _read_rows(path, schema)
        batch: list[tuple[str, str]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                self._insert(batch, path)
        self._insert(batch, path)

    def _insert(self, batch: list[tuple[str, str]], path: Path) -> None:
        try:
            self._db.executemany("INSERT INTO metadata (key, value) VALUES (?, ?)", batch)
        except sqlite3.IntegrityError:
            duplicate = next(key for key, _ in batch if self._count(key) or _twice(batch, key))
            raise UserError(
                f"metadata file {path}: key {duplicate!r} has more than one row; keep one per object"
            ) from None
        batch.clear()

    def _count(self, key: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM metadata WHERE key = ?", (key,)).fetchone()[0]


def _twice(batch: list[tuple[str, str]], key: str) -> bool:
    return sum(1 for other, _ in batch if other == key) > 1


def _read_rows(path: Path, schema: MetadataSchema | None) -> Iterator[tuple[str, str]]:
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise
    # become part of the first column's name.
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise UserError(f"cannot read metadata file {path}: {error.strerror}") from None
    with handle:
        try:
            if path.suffix.lower() == ".csv":
                yield from _csv_rows(path, handle, schema)
            elif path.suffix.lower() in (".jsonl", ".ndjson"):
                yield from _jsonl_rows(path, handle)
            else:
                raise UserError(f"metadata file {path}: use a .csv or .jsonl file")
        except UnicodeDecodeError as error:
            raise UserError(
                f"metadata file {path} is not UTF-8 text (byte {error.start}): "
                "save it as UTF-8 (in Excel: CSV UTF-8)"
            ) from None


def _csv_rows(path: Path, handle, schema: MetadataSchema | None) -> Iterator[tuple[str, str]]:
    reader = csv.DictReader(handle)
    if "key" not in (reader.fieldnames or ()):
        raise UserError(f"metadata file {path}: add a 'key' column holding each object's S3 key")
    specs = schema.keys if schema else {}
    for row in reader:
        key = row.pop("key")
        values = {
            name: specs[name].from_text(text) if name in specs else text
            for name, text in row.items()
            if text not in ("", None) and name is not None
        }
        yield key, json.dumps(values, ensure_ascii=False)


def _jsonl_rows(path: Path, handle) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"metadata file {path} line {number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("key"), str):
            raise UserError(
                f"metadata file {path} line {number}: write an object with a string 'key' field"
            )
        key = row.pop("key")
        yield key, json.dumps(row, ensure_ascii=False)


class MetadataSource:
    """Where metadata comes from; `None` parts are switched off."""

    def __init__(
        self,
        read_object: ReadObject | None,
        table: MetadataTable | None,
        schema: MetadataSchema | None,
    ) -> None:
        self.read_object = read_object
        self.table = table
        self.schema = schema

    def metadata_for(
        self, grouped: Grouped, sidecar: bytes | None
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """(metadata or None, error messages) for one entry."""
        metadata: dict[str, Any] = {}
        if sidecar is not None:
            try:
                parsed = json.loads(sidecar)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                return None, [f"sidecar {grouped.sidecar} is not JSON: {error}"]
            if not isinstance(parsed, dict):
                return None, [f"sidecar {grouped.sidecar} must hold a JSON object"]
            metadata.update(parsed)
        if self.table is not None:
            metadata.update(self.table.get(grouped.name) or {})
        errors = self.schema.check(metadata) if self.schema and metadata else []
        return (metadata or None), errors


def attach_metadata(
    grouped: Iterable[Grouped], source: MetadataSource, report: PlanReport, workers: int = 16
) -> Iterator[Entry]:
    """Entries with their `clientMetadata`, in order; entries with bad metadata are reported
    and skipped. Sidecars are fetched `workers` at a time, a bounded window ahead. Table rows
    that no entry asked for are counted in the report once all entries have passed.

    Runs once per entry, so the common case (no table, no sidecar, no fetch in flight) is
    one test and a yield."""
    yield from _attach(grouped, source, report, workers)
    if source.table is not None:
        report.unmatched_metadata_count, report.unmatched_metadata = source.table.unmatched(
            SAMPLE_LIMIT
        )


def _attach(
    grouped: Iterable[Grouped], source: MetadataSource, report: PlanReport, workers: int
) -> Iterator[Entry]:
    read_object, table = source.read_object, source.table
    if read_object is None:
        for each in grouped:
            if table is None:
                yield each[0]
            else:
                yield from _attached(each, None, source, report)
        return
    window: deque[tuple[Grouped, Future | None]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sidecar") as pool:
        for each in grouped:
            sidecar = each[2]
            if sidecar is None and not window:  # nothing to wait for
                if table is None:
                    yield each[0]
                else:
                    yield from _attached(each, None, source, report)
                continue
            window.append((each, pool.submit(read_object, sidecar, each[3]) if sidecar else None))
            while len(window) > workers * 4 or (window and window[0][1] is None):
                yield from _attached(*_resolved(window.popleft()), source, report)
        while window:
            yield from _attached(*_resolved(window.popleft()), source, report)


def _attached(
    each: Grouped, sidecar: bytes | None, source: MetadataSource, report: PlanReport
) -> Iterator[Entry]:
    """The entry with its metadata: none (reported) or one."""
    if sidecar is None and source.table is None:
        yield each.entry
        return
    metadata, errors = source.metadata_for(each, sidecar)
    if errors:
        for message in errors:
            report.add_metadata_error(each.name, message)
        return
    yield replace(each.entry, client_metadata=metadata) if metadata else each.entry


def _resolved(pending: tuple[Grouped, Future | None]) -> tuple[Grouped, bytes | None]:
    each, future = pending
    return each, future.result() if future is not None else None
