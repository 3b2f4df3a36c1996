"""Run state: one SQLite file in the output directory, so a rerun resumes instead of repeating.

Each entry is keyed by (Files folder, fingerprint): a changed object has a new fingerprint and
is uploaded again, an unchanged one never is. Its progress is in its columns:

    planned    job_id, item_uuid and error all NULL
    submitted  job_id set: it is in that upload job's manifest
    uploaded   item_uuid set: the job imported it as that storage item
    failed     error set (JSON: url, error, subtask_uuid); `ingest retry` resubmits it
    linked     its item_uuid is in `links` for the Dataset

A sync writes only what changed. Which scans saw an entry is one interval, `seen_from` (the
scan since which it has been listed without a break) to `gone_at` (the first finished scan
that no longer listed it, NULL while it is listed): an unchanged entry costs a lookup, not a
write. The interval is exact for the latest scans, the only ones read (the running one, and
the latest finished one for `retry`, `verify`, `status`). What `retry` needs to rebuild an
entry beyond its title and first URL is one compact `marshal` blob.

`sidecars` keeps each `<key>.metadata.json` body read, with the ETag it was listed with, so a
sync GETs only the sidecars that are new or changed (`cached_sidecars`).

Every change is one SQLite transaction, so a kill at any moment leaves a consistent file.
Nothing here holds a secret: no key, no external ID.
"""

from __future__ import annotations

import fcntl
import json
import marshal
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from ingest.encord_format import KINDS
from ingest.errors import UserError
from ingest.model import Entry, ReadObject

STATE_FILE = "state.sqlite"
# Entries looked up per query while recording a scan: per-statement costs vanish.
SCAN_LOOKUP_BATCH = 1000
# Rows written per transaction while recording a scan: few commits, little lost on a kill
# (the upload jobs commit whatever they cover anyway, see `record_job`).
SCAN_COMMIT_EVERY = 50_000
# Bumped when the tables change: an older file is rebuilt (losing the state is safe: the
# rerun submits everything again and Encord skips what it already has).
_SCHEMA_VERSION = 3
_TABLES = ("scans", "entries", "jobs", "sidecars", "links")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    title TEXT NOT NULL,
    first_url TEXT NOT NULL,
    rebuild BLOB NOT NULL,
    seen_from INTEGER NOT NULL,
    gone_at INTEGER,
    job_id TEXT,
    item_uuid TEXT,
    error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_fingerprint ON entries (folder, fingerprint);
-- Partial indexes hold only the rows their lookups can find: entries submitted (a job's
-- result names them), not imported (a unit error names their URLs), failed (retry).
CREATE INDEX IF NOT EXISTS entries_by_job ON entries (job_id, title) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_by_url ON entries (job_id, first_url)
    WHERE job_id IS NOT NULL AND item_uuid IS NULL;
CREATE INDEX IF NOT EXISTS failed_entries ON entries (title) WHERE error IS NOT NULL;
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    folder_uuid TEXT NOT NULL,
    manifest TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING'
);
CREATE TABLE IF NOT EXISTS sidecars (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    dataset TEXT NOT NULL,
    item_uuid TEXT NOT NULL,
    PRIMARY KEY (dataset, item_uuid)
);
"""
# The entries scan `?` saw (parameters: folder, scan, scan). `+folder`: not through the
# fingerprint index, whose order is random; in the table's order, or another index's.
_IN_SCAN = "+folder = ? AND seen_from <= ? AND (gone_at IS NULL OR gone_at > ?)"
# The entries listed before scan `?` and still listed then (parameters: folder, scan).
_LISTED_BEFORE = "+folder = ? AND seen_from < ? AND gone_at IS NULL"


class RunState:
    """`exclusive`: for the commands that upload. Two of them on one state would both see
    the same entries as unsubmitted and upload them twice, so the second one is refused."""

    def __init__(self, path: Path, exclusive: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = _lock(path.with_name(f"{path.name}.lock")) if exclusive else None
        self._db = sqlite3.connect(path)
        # WAL: readers (`status`, `verify`) never wait for a run; NORMAL sync: a commit is
        # safe from a killed process, and a power cut can only lose the last few commits,
        # which a rerun redoes (resubmitting is harmless, see `ingest.encord.upload.submit`).
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._create_tables()
        # Sidecars read from S3 by the metadata stage's threads, written by this connection
        # with the scan's own commits (`record_scan`).
        self._sidecars_read: deque[tuple[str, str, bytes]] = deque()
        self._lookups: list[sqlite3.Connection] = []
        # Per scan recorded to its end: the entries it saw that an earlier scan saw too.
        self._seen: dict[int, tuple[_SeenRows, _EarlierEntries]] = {}

    @classmethod
    def in_directory(cls, directory: Path, exclusive: bool = False) -> RunState:
        return cls(directory / STATE_FILE, exclusive)

    def close(self) -> None:
        for lookup in self._lookups:
            lookup.close()
        self._db.close()
        if self._lock is not None:
            self._lock.close()  # releases the lock

    def _create_tables(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version != _SCHEMA_VERSION:
            with self._db:
                for table in _TABLES:  # an older layout, or none: start afresh
                    self._db.execute(f"DROP TABLE IF EXISTS {table}")
                self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> RunState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- scans -------------------------------------------------------------------------

    def start_scan(self, folder: str) -> int:
        with self._db:
            (scan,) = self._db.execute(
                "INSERT INTO scans (folder) VALUES (?) RETURNING id", (folder,)
            ).fetchone()
        return int(scan)

    def finish_scan(self, scan: int) -> None:
        """Mark the scan finished, and the entries listed before it but not by it as gone.

        Only what left the bucket is written: when the scan saw as many of the entries
        listed before it as are still listed, none left and nothing is read either."""
        recorded = self._seen.pop(scan, None)
        if recorded is None:
            raise ValueError(f"scan {scan} was not recorded to its end (record_scan)")
        seen, earlier = recorded
        with self._db:
            if earlier.listed_before() != seen.count:
                rows = self._db.execute(
                    f"SELECT id FROM entries WHERE {_LISTED_BEFORE}", (earlier.folder, scan)
                )
                gone = [(scan, row_id) for (row_id,) in rows if row_id not in seen]
                self._db.executemany("UPDATE entries SET gone_at = ? WHERE id = ?", gone)
            self._db.execute("UPDATE scans SET finished = 1 WHERE id = ?", (scan,))

    def latest_scan(self, folder: str) -> int | None:
        row = self._db.execute(
            "SELECT max(id) FROM scans WHERE folder = ? AND finished = 1", (folder,)
        ).fetchone()
        return row[0]

    def record_scan(self, folder: str, scan: int, entries: Iterable[Entry]) -> Iterator[Entry]:
        """Record each scanned entry as seen by `scan`; yield those never submitted yet, in
        order. An unchanged entry is only read, new ones are inserted (each before it is
        yielded), so a rerun writes what changed. Sidecars read meanwhile
        (`cached_sidecars`) are stored with the same commits.

        A rerun lists the bucket in the order the entries were first recorded, so they are
        read alongside in that order (`_EarlierEntries`), a page at a time; the entries that
        don't line up are looked up by fingerprint, `SCAN_LOOKUP_BATCH` per query."""
        seen = _SeenRows()
        earlier = _EarlierEntries(self._db, folder, scan)
        written = 0
        entries = iter(entries)
        try:
            while batch := list(islice(entries, SCAN_LOOKUP_BATCH)):
                unsubmitted, writes = self._record_batch(folder, scan, batch, earlier, seen)
                written += writes
                if written >= SCAN_COMMIT_EVERY:
                    self._store_sidecars()
                    self._db.commit()
                    written = 0
                yield from unsubmitted
        finally:
            self._store_sidecars()
            self._db.commit()
        self._seen[scan] = (seen, earlier)

    def _record_batch(
        self,
        folder: str,
        scan: int,
        batch: list[Entry],
        earlier: _EarlierEntries,
        seen: _SeenRows,
    ) -> tuple[list[Entry], int]:
        """Record one batch; return its entries never submitted, and how many rows it wrote."""
        progress: list[tuple[int, bool] | None] = []  # per entry: (row id, unsubmitted)
        misses: list[str] = []
        for entry in batch:
            row = earlier.next_if(entry.fingerprint)
            if row is None:
                misses.append(entry.fingerprint)
            progress.append(row)
        found = self._look_up(folder, misses) if misses and not earlier.none_recorded else {}
        returning: list[tuple[int, int]] = []
        for row_id, _, gone_at in found.values():
            if gone_at is not None:  # listed again after a scan without it
                returning.append((scan, row_id))
        if found:
            earlier.skip_past(max(row_id for row_id, _, _ in found.values()))
        unsubmitted: list[Entry] = []
        new: list[tuple[str, str, str, str, bytes, int]] = []
        for entry, row in zip(batch, progress, strict=True):
            if row is None:
                known = found.get(entry.fingerprint)
                if known is None:
                    new.append(
                        (
                            folder,
                            entry.fingerprint,
                            entry.title,
                            entry.urls[0],
                            _compact(entry),
                            scan,
                        )
                    )
                    unsubmitted.append(entry)
                    continue
                row_id, never_submitted, gone_at = known
                if gone_at is None:
                    seen.add(row_id)
            else:
                row_id, never_submitted = row
                seen.add(row_id)
            if never_submitted:
                unsubmitted.append(entry)
        if new:
            self._db.executemany(
                "INSERT OR IGNORE INTO entries (folder, fingerprint, title, first_url, rebuild,"
                " seen_from) VALUES (?, ?, ?, ?, ?, ?)",
                new,
            )
        if returning:
            self._db.executemany(
                "UPDATE entries SET seen_from = ?, gone_at = NULL WHERE id = ?", returning
            )
        return unsubmitted, len(new) + len(returning)

    def _look_up(self, folder: str, fingerprints: list[str]) -> dict[str, tuple[int, bool, Any]]:
        """fingerprint → (row id, never submitted, gone_at), of those recorded, in one query."""
        rows = self._db.execute(
            "SELECT fingerprint, id, job_id IS NULL AND item_uuid IS NULL AND error IS NULL,"
            " gone_at FROM entries WHERE folder = ?"
            " AND fingerprint IN (SELECT value FROM json_each(?))",
            (folder, json.dumps(fingerprints)),
        )
        return {
            fingerprint: (row_id, bool(fresh), gone) for fingerprint, row_id, fresh, gone in rows
        }

    # -- sidecars ----------------------------------------------------------------------

    def cached_sidecars(self, read: ReadObject) -> ReadObject:
        """`read`, skipped for a sidecar stored with the same ETag by an earlier sync.

        Called from the metadata stage's threads: lookups go through a connection of their
        own (WAL: it never waits for this run's writes), one at a time; bodies read from S3
        are queued for `record_scan` to write with its commits, so memory holds only those
        read since its last commit. A body is cached whatever it holds: its JSON is checked
        on every sync, as for one just read."""
        lookup = sqlite3.connect(self.path, check_same_thread=False)
        self._lookups.append(lookup)
        lock = threading.Lock()
        queue = self._sidecars_read.append

        def read_through(key: str, etag: str | None) -> bytes:
            if etag is not None:
                with lock:
                    row = lookup.execute(
                        "SELECT body FROM sidecars WHERE key = ? AND etag = ?", (key, etag)
                    ).fetchone()
                if row is not None:
                    return row[0]
            body = read(key, etag)
            if etag is not None:
                queue((key, etag, body))
            return body

        return read_through

    def _store_sidecars(self) -> None:
        """Write the queued sidecars into the current transaction (the caller commits)."""
        queued = self._sidecars_read
        batch = [queued.popleft() for _ in range(len(queued))]
        if batch:
            self._db.executemany(
                "INSERT INTO sidecars (key, etag, body) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, body = excluded.body",
                batch,
            )

    # -- upload jobs -------------------------------------------------------------------

    def record_job(
        self, folder: str, folder_uuid: str, job_id: str, manifest: Path, fingerprints: list[str]
    ) -> None:
        """The job and its entries' submission, in one transaction."""
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, folder, folder_uuid, manifest)"
                " VALUES (?, ?, ?, ?)",
                (job_id, folder, folder_uuid, str(manifest)),
            )
            self._db.executemany(
                "UPDATE entries SET job_id = ?, error = NULL WHERE folder = ? AND fingerprint = ?",
                [(job_id, folder, fingerprint) for fingerprint in fingerprints],
            )

    def job(self, job_id: str) -> dict[str, str] | None:
        row = self._db.execute(
            "SELECT job_id, folder, folder_uuid, manifest, status FROM jobs WHERE job_id = ?",
            (job_id,),
        ).fetchone()
        return (
            dict(zip(("job_id", "folder", "folder_uuid", "manifest", "status"), row, strict=True))
            if row
            else None
        )

    def pending_jobs(self, folder: str) -> list[str]:
        rows = self._db.execute(
            "SELECT job_id FROM jobs WHERE folder = ? AND status = 'PENDING' ORDER BY rowid",
            (folder,),
        )
        return [job_id for (job_id,) in rows]

    def record_job_result(
        self,
        job_id: str,
        items: Iterable[tuple[str, str]],
        unit_errors: Iterable[dict[str, Any]],
    ) -> list[str]:
        """Store a settled job's items (name, uuid) and failed units; return the titles of
        its entries that the result accounts for neither way (e.g. skipped as duplicates).
        The job stays pending until `finish_job`, so a kill before that settles it again."""
        with self._db:
            self._db.executemany(
                "UPDATE entries SET item_uuid = ?, error = NULL WHERE job_id = ? AND title = ?",
                [(item_uuid, job_id, name) for name, item_uuid in items],
            )
            for unit in unit_errors:
                for url in unit["object_urls"]:
                    self._db.execute(
                        "UPDATE entries SET error = ? WHERE job_id = ? AND first_url = ?"
                        " AND item_uuid IS NULL",
                        (json.dumps(unit), job_id, url),
                    )
        rows = self._db.execute(
            "SELECT title FROM entries WHERE job_id = ? AND item_uuid IS NULL AND error IS NULL",
            (job_id,),
        )
        return [title for (title,) in rows]

    def resolve_item(self, job_id: str, title: str, item_uuid: str | None) -> None:
        """Settle an entry the job's result left out: found in the folder, or failed."""
        error = None if item_uuid else json.dumps({"error": "not in the upload job's result"})
        with self._db:
            self._db.execute(
                "UPDATE entries SET item_uuid = ?, error = ? WHERE job_id = ? AND title = ?",
                (item_uuid, error, job_id, title),
            )

    def finish_job(self, job_id: str, status: str) -> None:
        with self._db:
            if status != "DONE":
                # The job failed or was cancelled as a whole: what it did not import counts
                # as never submitted, so a rerun (after the cause is fixed) submits it again.
                self._db.execute(
                    "UPDATE entries SET job_id = NULL WHERE job_id = ?"
                    " AND item_uuid IS NULL AND error IS NULL",
                    (job_id,),
                )
            self._db.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (status, job_id))

    # -- failed units ------------------------------------------------------------------

    def failed_units(self, folder: str, scan: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(title, error record) of each failed entry the scan saw."""
        rows = self._db.execute(
            "SELECT title, first_url, job_id, error FROM entries"
            f" WHERE {_IN_SCAN} AND error IS NOT NULL ORDER BY title",
            (folder, scan, scan),
        )
        for title, first_url, job_id, error in rows:
            yield title, {"url": first_url, "job_id": job_id, **json.loads(error)}

    def failed_entries(self, folder: str, scan: int, page_size: int = 1000) -> Iterator[Entry]:
        """The scan's failed entries, read a page at a time: the caller may resubmit (and so
        update) them while iterating, which an open SQLite cursor would not survive."""
        after = ""
        while rows := self._db.execute(
            "SELECT title, first_url, rebuild FROM entries"
            f" WHERE {_IN_SCAN} AND error IS NOT NULL AND title > ? ORDER BY title LIMIT ?",
            (folder, scan, scan, after, page_size),
        ).fetchall():
            for title, first_url, rebuild in rows:
                yield _rebuild(title, first_url, rebuild)
            after = rows[-1][0]

    # -- linking -----------------------------------------------------------------------

    def unlinked_items(
        self, folder: str, scan: int, dataset: str, batch_size: int
    ) -> Iterator[list[str]]:
        """The scan's uploaded items not linked to `dataset` yet, in batches. Read a page at
        a time in the order the entries were first recorded, so the caller may record links
        between batches and each page starts where the last one ended (no rescanning of
        what is already linked)."""
        after = 0
        while rows := self._db.execute(
            f"SELECT id, item_uuid FROM entries WHERE {_IN_SCAN} AND id > ?"
            " AND item_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links"
            " WHERE links.dataset = ? AND links.item_uuid = entries.item_uuid)"
            " ORDER BY id LIMIT ?",
            (folder, scan, scan, after, dataset, batch_size),
        ).fetchall():
            yield [item_uuid for _, item_uuid in rows]
            after = rows[-1][0]

    def record_links(self, dataset: str, item_uuids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO links (dataset, item_uuid) VALUES (?, ?)",
                [(dataset, item_uuid) for item_uuid in item_uuids],
            )

    # -- verification ------------------------------------------------------------------

    def compare_with_dataset(
        self, folder: str, scan: int, rows: Iterable[tuple[str, str | None]]
    ) -> Iterator[tuple[str, str]]:
        """("missing" | "extra", title) for each difference between the scan's entries and
        the Dataset's rows, given as (title, backing item uuid). A row backed by another item
        than the one uploaded for that title counts as both extra and missing."""
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS dataset_rows (title TEXT, item_uuid TEXT)"
        )
        self._db.execute("DELETE FROM dataset_rows")
        self._db.executemany("INSERT INTO dataset_rows VALUES (?, ?)", rows)
        self._db.execute("CREATE INDEX IF NOT EXISTS temp.rows_by_title ON dataset_rows (title)")
        for difference in ("missing", "extra"):
            for title, ours, theirs in self._titles_side_by_side(folder, scan):
                unmatched = ours if difference == "missing" else theirs
                others = theirs if difference == "missing" else ours
                for item_uuid in unmatched:
                    if not any(_same_item(item_uuid, other) for other in others):
                        yield difference, title

    def _titles_side_by_side(
        self, folder: str, scan: int
    ) -> Iterator[tuple[str, list[str | None], list[str | None]]]:
        """(title, the scan's item uuids, the Dataset's) per title, in title order: both
        sides sorted and merged here, so the entries need no index by title. (SQLite
        orders text by its UTF-8 bytes, which is the order of Python's `str` too.)"""
        ours = self._db.execute(
            f"SELECT title, item_uuid FROM entries WHERE {_IN_SCAN} ORDER BY title",
            (folder, scan, scan),
        )
        theirs = self._db.execute("SELECT title, item_uuid FROM dataset_rows ORDER BY title")
        mine, other = next(ours, None), next(theirs, None)
        while mine is not None or other is not None:
            title = min(row[0] for row in (mine, other) if row is not None)
            mine_here: list[str | None] = []
            while mine is not None and mine[0] == title:
                mine_here.append(mine[1])
                mine = next(ours, None)
            other_here: list[str | None] = []
            while other is not None and other[0] == title:
                other_here.append(other[1])
                other = next(theirs, None)
            yield title, mine_here, other_here

    # -- counts ------------------------------------------------------------------------

    def counts(self, folder: str, scan: int, dataset: str | None) -> dict[str, int]:
        """How many of the scan's entries are in each state."""
        (total, submitted, uploaded, failed, linked) = self._db.execute(
            "SELECT count(*), count(job_id), count(item_uuid), count(error),"
            # EXISTS, one lookup in the links' index per entry: `IN (SELECT …)` would first
            # copy every link of the Dataset into a temporary table.
            " count(EXISTS (SELECT 1 FROM links WHERE links.dataset = ?"
            " AND links.item_uuid = entries.item_uuid) OR NULL)"
            f" FROM entries WHERE {_IN_SCAN}",
            (dataset, folder, scan, scan),
        ).fetchone()
        return {
            "entries": total,
            "submitted": submitted,
            "uploaded": uploaded,
            "failed": failed,
            "linked": linked,
        }


def _lock(path: Path) -> IO[bytes]:
    lock = path.open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UserError(
            f"another `python -m ingest run` or `retry` is using {path.parent}: "
            "wait for it to finish (it holds the run state)"
        ) from None
    return lock


def _same_item(ours: str | None, theirs: str | None) -> bool:
    """A Dataset row matches an entry of its title backed by the item uploaded for it, or
    when either side does not know the item."""
    return ours is None or theirs is None or ours == theirs


class _EarlierEntries:
    """The entries listed before a scan (and still listed by the one before it), in the order
    they were first recorded: a page at a time, in one query each (no cursor kept open
    across the scan's commits)."""

    PAGE = 2000

    def __init__(self, db: sqlite3.Connection, folder: str, scan: int) -> None:
        self._db = db
        self.folder = folder
        self._scan = scan
        self._rows: deque[tuple[int, str, int]] = deque()  # (id, fingerprint, unsubmitted)
        self._after = 0  # the last id read
        self._read = 0  # rows read
        # A folder never scanned has nothing to look up (the first sync's fast path).
        self.none_recorded = (
            db.execute("SELECT 1 FROM entries WHERE folder = ? LIMIT 1", (folder,)).fetchone()
            is None
        )
        self._exhausted = self.none_recorded

    def listed_before(self) -> int:
        """How many entries were listed before the scan and still listed then: those read,
        and those after them (none once the scan has read them all)."""
        if self._exhausted:
            return self._read
        (rest,) = self._db.execute(
            f"SELECT count(*) FROM entries WHERE id > ? AND {_LISTED_BEFORE}",
            (self._after, self.folder, self._scan),
        ).fetchone()
        return self._read + rest

    def next_if(self, fingerprint: str) -> tuple[int, bool] | None:
        """(row id, never submitted) if the next earlier entry has this fingerprint; it is
        then consumed. Otherwise None, and nothing moves."""
        rows = self._rows
        if not rows and not self._fill():
            return None
        row_id, expected, unsubmitted = rows[0]
        if expected != fingerprint:
            return None
        rows.popleft()
        return row_id, bool(unsubmitted)

    def skip_past(self, row_id: int) -> None:
        """Drop the rows up to `row_id` if it is among those read: the entries between were
        not listed where they stood (gone, or found later by fingerprint). A row further on
        was appended by a later sync: it says nothing about where the listing is."""
        rows = self._rows
        if rows and rows[0][0] <= row_id <= rows[-1][0]:
            while rows and rows[0][0] <= row_id:
                rows.popleft()

    def _fill(self) -> bool:
        if self._exhausted:
            return False
        page = self._db.execute(
            "SELECT id, fingerprint, job_id IS NULL AND item_uuid IS NULL AND error IS NULL"
            f" FROM entries WHERE id > ? AND {_LISTED_BEFORE} ORDER BY id LIMIT ?",
            (self._after, self.folder, self._scan, self.PAGE),
        ).fetchall()
        if not page:
            self._exhausted = True
            return False
        self._rows.extend(page)
        self._after = page[-1][0]
        self._read += len(page)
        return True


class _SeenRows:
    """A set of entry row ids as a bitmap: an eighth of a byte per row, whatever the scan."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, row_id: int) -> None:
        byte, bit = row_id >> 3, 1 << (row_id & 7)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits) + len(self._bits) // 2))
        if not self._bits[byte] & bit:
            self._bits[byte] |= bit
            self.count += 1

    def __contains__(self, row_id: int) -> bool:
        byte = row_id >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (row_id & 7)))


_KIND_NUMBER = {kind: number for number, kind in enumerate(KINDS)}


def _compact(entry: Entry) -> bytes:
    """What rebuilds the entry with its title and first URL (stored beside it): the keys
    only when they are not the title alone, the URLs only when they are not the first one's
    base followed by each key, as they usually are."""
    first_url, keys = entry.urls[0], entry.keys
    base = first_url[: len(first_url) - len(keys[0])] if first_url.endswith(keys[0]) else None
    derived = base is not None and all(
        url == base + key for url, key in zip(entry.urls, keys, strict=True)
    )
    fields = (
        _KIND_NUMBER[entry.kind],
        None if keys == (entry.title,) else keys,
        entry.etags,
        None if derived else entry.urls,
        entry.client_metadata,
        entry.create_video,
    )
    return marshal.dumps(fields, 4)


def _rebuild(title: str, first_url: str, rebuild: bytes) -> Entry:
    kind, keys, etags, urls, client_metadata, create_video = marshal.loads(rebuild)
    if keys is None:
        keys = (title,)
    if urls is None:
        base = first_url[: len(first_url) - len(keys[0])]
        urls = tuple(base + key for key in keys)
    return Entry(KINDS[kind], title, keys, urls, etags, client_metadata, create_video)
