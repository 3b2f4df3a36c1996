"""Run state: one SQLite file in the output directory, so a rerun resumes instead of repeating.

Each entry is keyed by (Files folder, fingerprint): a changed object has a new fingerprint and
is uploaded again, an unchanged one never is. Its progress is in its columns:

    planned    job_id, item_uuid and error all NULL
    submitted  job_id set: it is in that upload job's manifest
    uploaded   item_uuid set: the job imported it as that storage item
    failed     error set (JSON: url, error, subtask_uuid); `ingest retry` resubmits it
    linked     its item_uuid is in `links` for the Dataset

`sidecars` keeps each `<key>.metadata.json` body read, with the ETag it was listed with, so a
sync GETs only the sidecars that are new or changed (`cached_sidecars`).

Every change is one SQLite transaction, so a kill at any moment leaves a consistent file.
Nothing here holds a secret: no key, no external ID.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ingest.errors import UserError
from ingest.mirror.diff import PRESENT, UNLINKED, Change, Held, Prior, entry_signature
from ingest.model import Entry, ReadObject
from ingest.plan.dicom import DicomHeader, ReadDicomHeader

STATE_FILE = "state.sqlite"
# Rows written per transaction while recording a scan: few fsyncs, little lost on a kill.
SCAN_COMMIT_EVERY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
    folder TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    title TEXT NOT NULL,
    first_url TEXT NOT NULL,
    entry TEXT NOT NULL,
    scan INTEGER NOT NULL,
    job_id TEXT,
    item_uuid TEXT,
    error TEXT,
    PRIMARY KEY (folder, fingerprint)
);
CREATE INDEX IF NOT EXISTS entries_by_scan_title ON entries (folder, scan, title);
CREATE INDEX IF NOT EXISTS entries_by_job ON entries (job_id, title);
CREATE INDEX IF NOT EXISTS entries_by_url ON entries (job_id, first_url);
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
CREATE TABLE IF NOT EXISTS job_intents (
    intent INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL,
    folder_uuid TEXT NOT NULL,
    manifest TEXT NOT NULL,
    started_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS intent_entries (
    intent INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (intent, fingerprint)
);
CREATE TABLE IF NOT EXISTS dedupe_pending (
    folder TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (folder, fingerprint)
);
CREATE TABLE IF NOT EXISTS folder_items (
    folder_uuid TEXT NOT NULL,
    item_uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (folder_uuid, item_uuid)
);
CREATE INDEX IF NOT EXISTS folder_items_by_url ON folder_items (folder_uuid, url);
CREATE INDEX IF NOT EXISTS folder_items_by_name ON folder_items (folder_uuid, name);
CREATE TABLE IF NOT EXISTS dicom_headers (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    series_uid TEXT,
    instance_number INTEGER
);
"""
# An entry Encord imports from one URL (matched to its item by URL); the others (image groups,
# DICOM series) are matched by title.
_SINGLE_FILE = "json_extract(entry, '$.kind') NOT IN ('image_groups', 'dicom_series')"
# The folder index's item for entry `e` (parameter: the folder's uuid): by URL for a single
# file, by title for a group, the newest of several (a changed group is a new item).
_MATCHING_ITEM = (
    "SELECT f.item_uuid FROM folder_items f WHERE f.folder_uuid = :folder_uuid AND"
    " CASE WHEN json_extract(e.entry, '$.kind') IN ('image_groups', 'dicom_series')"
    " THEN f.url IS NULL AND f.name = e.title ELSE f.url = e.first_url END"
    " ORDER BY f.created_at DESC LIMIT 1"
)
# Encord's clock against ours, when telling a group's fresh duplicates from its old versions.
GROUP_CLOCK_SKEW_SECONDS = 600

# Mirroring (ingest/mirror). `mirror_items`: what each storage item a sync left in the folder
# came from (its provenance), so a later sync decides deletions and moves without asking
# Encord; status 'present' (in the Dataset) or 'unlinked' (left in the folder only).
# `mirror_held`: entries of a scan kept out of the upload stream until the mirror step has
# decided them (a move to re-point, a changed item to replace). `mirror_actions`: each
# change to Encord, recorded as an intent before it is made and done after.
_MIRROR_SCHEMA = """
CREATE TABLE IF NOT EXISTS mirror_items (
    folder TEXT NOT NULL,
    item_uuid TEXT NOT NULL,
    fingerprint TEXT,
    title TEXT NOT NULL,
    urls TEXT NOT NULL,
    etags TEXT NOT NULL,
    signature TEXT,
    status TEXT NOT NULL DEFAULT 'present',
    PRIMARY KEY (folder, item_uuid)
);
CREATE INDEX IF NOT EXISTS mirror_items_by_title ON mirror_items (folder, title);
CREATE INDEX IF NOT EXISTS mirror_items_by_signature ON mirror_items (folder, signature);
CREATE TABLE IF NOT EXISTS mirror_held (
    folder TEXT NOT NULL,
    scan INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    title TEXT NOT NULL,
    change TEXT NOT NULL,
    signature TEXT,
    item_uuid TEXT,
    PRIMARY KEY (folder, scan, fingerprint)
);
CREATE TABLE IF NOT EXISTS mirror_actions (
    folder TEXT NOT NULL,
    item_uuid TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'intent',
    PRIMARY KEY (folder, item_uuid, action)
);
"""


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
        self._db.executescript(_SCHEMA)
        self._db.executescript(_MIRROR_SCHEMA)
        # Sidecars read from S3 by the metadata stage's threads, written by this connection
        # with the scan's own commits (`record_scan`).
        self._sidecars_read: deque[tuple[str, str, bytes]] = deque()
        self._lookups: list[sqlite3.Connection] = []

    @classmethod
    def in_directory(cls, directory: Path, exclusive: bool = False) -> RunState:
        return cls(directory / STATE_FILE, exclusive)

    def close(self) -> None:
        for lookup in self._lookups:
            lookup.close()
        self._db.close()
        if self._lock is not None:
            self._lock.close()  # releases the lock

    def __enter__(self) -> RunState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- scans -------------------------------------------------------------------------

    def start_scan(self, folder: str) -> int:
        with self._db:
            scan = self._db.execute("INSERT INTO scans (folder) VALUES (?)", (folder,)).lastrowid
        if scan is None:  # an INSERT sets it: never
            raise RuntimeError(f"SQLite gave the new scan of {folder!r} no row id")
        return scan

    def finish_scan(self, scan: int) -> None:
        with self._db:
            self._db.execute("UPDATE scans SET finished = 1 WHERE id = ?", (scan,))

    def latest_scan(self, folder: str) -> int | None:
        row = self._db.execute(
            "SELECT max(id) FROM scans WHERE folder = ? AND finished = 1", (folder,)
        ).fetchone()
        return row[0]

    def record_scan(self, folder: str, scan: int, entries: Iterable[Entry]) -> Iterator[Entry]:
        """Mark each scanned entry as seen by `scan`; yield those never submitted yet.
        Sidecars read meanwhile (`cached_sidecars`) are stored with the same commits."""
        pending = 0
        try:
            for entry in entries:
                progress = self._db.execute(
                    "INSERT INTO entries (folder, fingerprint, title, first_url, entry, scan)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (folder, fingerprint) DO UPDATE SET scan = excluded.scan"
                    # The columns themselves: SQLite 3.40 evaluates `job_id IS NULL` in an
                    # upsert's RETURNING clause wrongly (false for a freshly inserted NULL).
                    " RETURNING job_id, item_uuid, error",
                    (folder, entry.fingerprint, entry.title, entry.urls[0], _dump(entry), scan),
                ).fetchone()
                pending += 1
                if pending >= SCAN_COMMIT_EVERY:
                    self._store_sidecars()
                    self._db.commit()
                    pending = 0
                if progress == (None, None, None):  # never submitted
                    yield entry
        finally:
            self._store_sidecars()
            self._db.commit()

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

    # -- DICOM headers -----------------------------------------------------------------

    def cached_dicom_headers(self, read: ReadDicomHeader) -> ReadDicomHeader:
        """`read`, skipped for a file whose header was read at the same ETag by an earlier
        sync. Called from the grouping stage, in the thread that records the scan: what is
        read is written into the scan's open transaction, committed with it."""

        def read_through(key: str, etag: str) -> DicomHeader:
            row = self._db.execute(
                "SELECT series_uid, instance_number FROM dicom_headers WHERE key = ? AND etag = ?",
                (key, etag),
            ).fetchone()
            if row is not None:
                return DicomHeader(*row)
            header = read(key, etag)
            self._db.execute(
                "INSERT INTO dicom_headers (key, etag, series_uid, instance_number)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET etag = excluded.etag,"
                " series_uid = excluded.series_uid, instance_number = excluded.instance_number",
                (key, etag, header.series_uid, header.instance_number),
            )
            return header

        return read_through

    # -- upload jobs -------------------------------------------------------------------

    def record_intent(
        self, folder: str, folder_uuid: str, manifest: str, fingerprints: list[str]
    ) -> int:
        """An upload job about to be started with these entries, committed before the request
        is sent: if the process dies before `record_job`, the rerun knows a job may exist."""
        with self._db:
            intent = self._db.execute(
                "INSERT INTO job_intents (folder, folder_uuid, manifest, started_at)"
                " VALUES (?, ?, ?, ?)",
                (folder, folder_uuid, manifest, time.time()),
            ).lastrowid
            self._db.executemany(
                "INSERT OR IGNORE INTO intent_entries (intent, fingerprint) VALUES (?, ?)",
                [(intent, fingerprint) for fingerprint in fingerprints],
            )
        assert intent is not None  # an INSERT's rowid
        return intent

    def drop_intent(self, intent: int) -> None:
        """Encord refused the start (no job exists): forget the intent."""
        with self._db:
            self._delete_intent(intent)

    def orphaned_intents(self, folder: str) -> list[tuple[int, str, str, float]]:
        """(intent, folder uuid, manifest, started at) of job starts a killed run left open."""
        return self._db.execute(
            "SELECT intent, folder_uuid, manifest, started_at FROM job_intents"
            " WHERE folder = ? ORDER BY intent",
            (folder,),
        ).fetchall()

    def intent_urls_unmatched(self, intent: int, folder_uuid: str) -> int:
        """How many of the intent's entries have no item in the folder index yet."""
        (count,) = self._db.execute(
            "SELECT count(*) FROM intent_entries i JOIN entries e ON e.fingerprint = i.fingerprint"
            " JOIN job_intents j ON j.intent = i.intent AND e.folder = j.folder"
            f" WHERE i.intent = :intent AND NOT EXISTS ({_MATCHING_ITEM})",
            {"intent": intent, "folder_uuid": folder_uuid},
        ).fetchone()
        return count

    def settle_intent(self, intent: int, folder: str, folder_uuid: str, manifest: str) -> int:
        """Give the entries of an orphaned start the items the folder index holds for them
        (as if a job `intent-N` had imported them), leave the rest unsubmitted, and mark all
        of them for de-duplication (the orphaned job may have imported them twice over with a
        resubmission). Return how many were found."""
        job_id = f"intent-{intent}"
        with self._db:
            (started_at,) = self._db.execute(
                "SELECT started_at FROM job_intents WHERE intent = ?", (intent,)
            ).fetchone()
            self._db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, folder, folder_uuid, manifest, status)"
                " VALUES (?, ?, ?, ?, 'ORPHANED')",
                (job_id, folder, folder_uuid, manifest),
            )
            found = self._db.execute(
                f"UPDATE entries AS e SET job_id = :job, error = NULL, item_uuid = ({_MATCHING_ITEM})"
                " WHERE e.folder = :folder AND e.item_uuid IS NULL AND e.fingerprint IN"
                " (SELECT fingerprint FROM intent_entries WHERE intent = :intent)"
                f" AND EXISTS ({_MATCHING_ITEM})",
                {"job": job_id, "folder_uuid": folder_uuid, "folder": folder, "intent": intent},
            ).rowcount
            self._db.execute(
                "INSERT OR IGNORE INTO dedupe_pending (folder, fingerprint, since)"
                " SELECT ?, fingerprint, ? FROM intent_entries WHERE intent = ?",
                (folder, started_at, intent),
            )
            self._delete_intent(intent)
        return found

    def _delete_intent(self, intent: int) -> None:
        self._db.execute("DELETE FROM intent_entries WHERE intent = ?", (intent,))
        self._db.execute("DELETE FROM job_intents WHERE intent = ?", (intent,))

    def record_job(
        self,
        folder: str,
        folder_uuid: str,
        job_id: str,
        manifest: Path | str,
        fingerprints: list[str],
        intent: int | None = None,
    ) -> None:
        """The job and its entries' submission, in one transaction (closing its intent)."""
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
            if intent is not None:
                self._delete_intent(intent)

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

    def unmatched_entries(self, folder: str) -> int:
        """Entries of the folder's settled-or-settling jobs not yet given an item or error."""
        (count,) = self._db.execute(
            "SELECT count(*) FROM entries WHERE folder = ? AND job_id IS NOT NULL"
            " AND item_uuid IS NULL AND error IS NULL",
            (folder,),
        ).fetchone()
        return count

    def index_folder(
        self, folder_uuid: str, items: Iterable[tuple[str, str, str | None, float]]
    ) -> int:
        """Replace the index of the folder's items — (uuid, name, URL or None, created at as
        epoch seconds) — written in batches, so a folder of millions stays on disk."""
        count = 0
        with self._db:
            self._db.execute("DELETE FROM folder_items WHERE folder_uuid = ?", (folder_uuid,))
        batch: list[tuple[str, str, str, str | None, float]] = []
        for item_uuid, name, url, created_at in items:
            batch.append((folder_uuid, item_uuid, name, url, created_at))
            if len(batch) >= SCAN_COMMIT_EVERY:
                count += self._index_batch(batch)
        return count + self._index_batch(batch)

    def _index_batch(self, batch: list[tuple[str, str, str, str | None, float]]) -> int:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO folder_items (folder_uuid, item_uuid, name, url, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                batch,
            )
        count = len(batch)
        batch.clear()
        return count

    def match_job_items(self, job_id: str, folder_uuid: str) -> None:
        """Give the job's entries that its result left without an item the item the folder
        index holds for them: by URL for a single file, by title for a group or series."""
        with self._db:
            self._db.execute(
                f"UPDATE entries AS e SET item_uuid = ({_MATCHING_ITEM})"
                " WHERE e.job_id = :job AND e.item_uuid IS NULL AND e.error IS NULL",
                {"folder_uuid": folder_uuid, "job": job_id},
            )

    def duplicates(self, folder: str, folder_uuid: str) -> Iterator[tuple[str, str, list[str]]]:
        """(fingerprint, item to keep, extra items) of each entry marked for de-duplication
        that has more than one item in the folder index. Kept: an item linked to a Dataset,
        else the one the entry already has, else the oldest."""
        rows = self._db.execute(
            "SELECT d.fingerprint, d.since, e.item_uuid, e.title, e.first_url,"
            f" {_SINGLE_FILE.replace('entry', 'e.entry')}"
            " FROM dedupe_pending d JOIN entries e ON e.folder = d.folder"
            " AND e.fingerprint = d.fingerprint WHERE d.folder = ?",
            (folder,),
        ).fetchall()
        for fingerprint, since, current, title, first_url, single in rows:
            args: tuple[object, ...]
            if single:
                query, args = "url = ?", (first_url,)
            else:  # a group's earlier versions share its title: only items since the start
                query, args = (
                    "url IS NULL AND name = ? AND created_at >= ?",
                    (
                        title,
                        since - GROUP_CLOCK_SKEW_SECONDS,
                    ),
                )
            items = self._db.execute(
                "SELECT item_uuid, EXISTS (SELECT 1 FROM links WHERE links.item_uuid ="
                f" folder_items.item_uuid) FROM folder_items WHERE folder_uuid = ? AND {query}"
                " ORDER BY created_at, item_uuid",
                (folder_uuid, *args),
            ).fetchall()
            if len(items) < 2:
                continue
            linked = [item for item, is_linked in items if is_linked]
            uuids = [item for item, _ in items]
            keep = linked[0] if linked else current if current in uuids else uuids[0]
            yield fingerprint, keep, [item for item in uuids if item != keep and item not in linked]

    def deduplicated(self, folder: str, fingerprint: str, keep: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE entries SET item_uuid = ?, error = NULL WHERE folder = ? AND fingerprint = ?",
                (keep, folder, fingerprint),
            )

    def mark_dedupe(self, folder: str, fingerprints: list[str]) -> None:
        """These entries may have been imported by a job whose start answer was lost."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO dedupe_pending (folder, fingerprint, since) VALUES (?, ?, ?)",
                [(folder, fingerprint, time.time()) for fingerprint in fingerprints],
            )

    def clear_dedupe(self, folder: str, marked_before: float) -> None:
        """Forget the marks older than `marked_before`: a job that could still add items
        for the newer ones may be running, so a later run checks them again."""
        with self._db:
            self._db.execute(
                "DELETE FROM dedupe_pending WHERE folder = ? AND since < ?", (folder, marked_before)
            )

    def needs_dedupe(self, folder: str) -> bool:
        return bool(
            self._db.execute(
                "SELECT 1 FROM dedupe_pending WHERE folder = ? LIMIT 1", (folder,)
            ).fetchone()
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
            " WHERE folder = ? AND scan = ? AND error IS NOT NULL ORDER BY title",
            (folder, scan),
        )
        for title, first_url, job_id, error in rows:
            yield title, {"url": first_url, "job_id": job_id, **json.loads(error)}

    def failed_entries(self, folder: str, scan: int, page_size: int = 1000) -> Iterator[Entry]:
        """The scan's failed entries, read a page at a time: the caller may resubmit (and so
        update) them while iterating, which an open SQLite cursor would not survive."""
        after = ""
        while rows := self._db.execute(
            "SELECT title, entry FROM entries WHERE folder = ? AND scan = ?"
            " AND error IS NOT NULL AND title > ? ORDER BY title LIMIT ?",
            (folder, scan, after, page_size),
        ).fetchall():
            for _, entry in rows:
                yield _load(entry)
            after = rows[-1][0]

    # -- linking -----------------------------------------------------------------------

    def unlinked_items(
        self, folder: str, scan: int, dataset: str, batch_size: int
    ) -> Iterator[list[str]]:
        """The scan's uploaded items not linked to `dataset` yet, in batches. Read a page at
        a time in title order, so the caller may record links between batches and each page
        starts where the last one ended (no rescanning of what is already linked)."""
        after = ""
        while rows := self._db.execute(
            "SELECT title, item_uuid FROM entries WHERE folder = ? AND scan = ? AND title > ?"
            " AND item_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links"
            " WHERE links.dataset = ? AND links.item_uuid = entries.item_uuid)"
            " ORDER BY title LIMIT ?",
            (folder, scan, after, dataset, batch_size),
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
        matches = (
            "r.title = e.title AND (e.item_uuid IS NULL OR r.item_uuid IS NULL"
            " OR r.item_uuid = e.item_uuid)"
        )
        missing = self._db.execute(
            "SELECT 'missing', e.title FROM entries e WHERE e.folder = ? AND e.scan = ?"
            f" AND NOT EXISTS (SELECT 1 FROM dataset_rows r WHERE {matches}) ORDER BY e.title",
            (folder, scan),
        )
        yield from missing
        extra = self._db.execute(
            "SELECT 'extra', r.title FROM dataset_rows r WHERE NOT EXISTS (SELECT 1 FROM"
            f" entries e WHERE e.folder = ? AND e.scan = ? AND {matches}) ORDER BY r.title",
            (folder, scan),
        )
        yield from extra

    def linked_rows(
        self, folder: str, dataset: str, page_size: int = 10_000
    ) -> Iterator[tuple[str, str]]:
        """(title, item uuid) of every item of the folder's entries linked to `dataset`, as
        the link records have it, read a page at a time."""
        after = ""
        while rows := self._db.execute(
            "SELECT l.item_uuid, min(e.title) FROM links l JOIN entries e"
            " ON e.item_uuid = l.item_uuid AND e.folder = ?"
            " WHERE l.dataset = ? AND l.item_uuid > ? GROUP BY l.item_uuid"
            " ORDER BY l.item_uuid LIMIT ?",
            (folder, dataset, after, page_size),
        ).fetchall():
            for item_uuid, title in rows:
                yield title, item_uuid
            after = rows[-1][0]

    def file_links(self, folder_uuid: str) -> Iterator[str]:
        """Each indexed item's URL (or, for a group or series, its name), by name."""
        for name, url in self._db.execute(
            "SELECT name, url FROM folder_items WHERE folder_uuid = ? ORDER BY name", (folder_uuid,)
        ):
            yield url or f"(no single file: {name})"

    def compare_with_folder(
        self, folder: str, scan: int, folder_uuid: str
    ) -> Iterator[tuple[str, str]]:
        """("duplicate" | "unplanned" | "not in folder", name) for each difference between
        the folder index (`index_folder`) and the scan's entries: an item no entry has is a
        duplicate when it has an entry's URL (single file) or title (group), else unplanned
        (unless the mirror step unlinked it and left it in the folder, as `unlink` says)."""
        for table in ("planned_items", "planned_units"):
            self._db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY)")
            self._db.execute(f"DELETE FROM {table}")
        self._db.execute(
            "INSERT OR IGNORE INTO planned_items SELECT item_uuid FROM entries"
            " WHERE folder = ? AND scan = ? AND item_uuid IS NOT NULL",
            (folder, scan),
        )
        self._db.execute(
            "INSERT OR IGNORE INTO planned_units SELECT CASE WHEN"
            f" {_SINGLE_FILE} THEN 'u:' || first_url ELSE 't:' || title END"
            " FROM entries WHERE folder = ? AND scan = ?",
            (folder, scan),
        )
        yield from self._db.execute(
            "SELECT 'not in folder', e.title FROM entries e WHERE e.folder = ? AND e.scan = ?"
            " AND NOT EXISTS (SELECT 1 FROM folder_items f WHERE f.folder_uuid = ?"
            " AND f.item_uuid = e.item_uuid) ORDER BY e.title",
            (folder, scan, folder_uuid),
        )
        yield from self._db.execute(
            "SELECT CASE WHEN (CASE WHEN url IS NULL THEN 't:' || name ELSE 'u:' || url END)"
            " IN planned_units THEN 'duplicate' ELSE 'unplanned' END, name FROM folder_items"
            " WHERE folder_uuid = ? AND item_uuid NOT IN planned_items"
            # Left in the folder on purpose: unlinked by `deletions: unlink`.
            " AND item_uuid NOT IN (SELECT item_uuid FROM mirror_items"
            " WHERE folder = ? AND status = 'unlinked') ORDER BY name",
            (folder_uuid, folder),
        )

    # -- counts ------------------------------------------------------------------------

    def counts(self, folder: str, scan: int, dataset: str | None) -> dict[str, int]:
        """How many of the scan's entries are in each state."""
        (total, submitted, uploaded, failed, linked) = self._db.execute(
            "SELECT count(*), count(job_id), count(item_uuid), count(error),"
            " count(item_uuid IN (SELECT item_uuid FROM links WHERE dataset = ?) OR NULL)"
            " FROM entries WHERE folder = ? AND scan = ?",
            (dataset, folder, scan),
        ).fetchone()
        return {
            "entries": total,
            "submitted": submitted,
            "uploaded": uploaded,
            "failed": failed,
            "linked": linked,
        }

    # -- mirroring (ingest/mirror) -----------------------------------------------------
    # `scan=None` in these methods means the preview of `ingest plan`: the entries it listed
    # are in temporary tables of this connection (`start_preview`), not in `entries`.

    def mirrored_folders(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT folder FROM mirror_items")]

    def has_mirrored(self, folder: str) -> bool:
        row = self._db.execute("SELECT 1 FROM mirror_items WHERE folder = ? LIMIT 1", (folder,))
        return row.fetchone() is not None

    def mirrored_count(self, folder: str) -> int:
        """Items a previous sync left in the Dataset."""
        return self._db.execute(
            "SELECT count(*) FROM mirror_items WHERE folder = ? AND status = ?",
            (folder, PRESENT),
        ).fetchone()[0]

    def prior_by_title(self, folder: str, title: str) -> Prior | None:
        row = self._db.execute(
            f"SELECT {_PRIOR_COLUMNS} FROM mirror_items WHERE folder = ? AND title = ?"
            " ORDER BY status = 'present' DESC LIMIT 1",
            (folder, title),
        ).fetchone()
        return _prior(row) if row else None

    def signature_elsewhere(self, folder: str, signature: str | None, title: str) -> bool:
        if signature is None:
            return False
        row = self._db.execute(
            "SELECT 1 FROM mirror_items WHERE folder = ? AND signature = ? AND title != ? LIMIT 1",
            (folder, signature, title),
        ).fetchone()
        return row is not None

    def is_imported(self, folder: str, fingerprint: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM entries WHERE folder = ? AND fingerprint = ? AND item_uuid IS NOT NULL",
            (folder, fingerprint),
        ).fetchone()
        return row is not None

    def hold(self, folder: str, scan: int | None, held: Held) -> None:
        """Keep an entry out of the upload until the mirror step decides it. Written in the
        current transaction: `record_scan` commits it with the entry's own row."""
        table = "temp.preview_held" if scan is None else "mirror_held"
        self._db.execute(
            f"INSERT OR REPLACE INTO {table}"
            " (folder, scan, fingerprint, title, change, signature, item_uuid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                folder,
                scan or 0,
                held.fingerprint,
                held.title,
                held.change.value,
                held.signature,
                held.item_uuid,
            ),
        )

    def held(self, folder: str, scan: int | None, change: str) -> list[Held]:
        """The scan's held entries of one kind (bounded by what changed, not the bucket)."""
        table = "temp.preview_held" if scan is None else "mirror_held"
        rows = self._db.execute(
            f"SELECT fingerprint, title, change, signature, item_uuid FROM {table}"
            " WHERE folder = ? AND scan = ? AND change = ? ORDER BY title",
            (folder, scan or 0, change),
        )
        return [Held(fp, title, Change(kind), sig, item) for fp, title, kind, sig, item in rows]

    def held_entries(self, folder: str, fingerprints: Iterable[str]) -> Iterator[Entry]:
        """The entries the mirror step releases to the upload, those never submitted only."""
        for fingerprint in fingerprints:
            row = self._db.execute(
                "SELECT entry FROM entries WHERE folder = ? AND fingerprint = ?"
                " AND job_id IS NULL AND item_uuid IS NULL AND error IS NULL",
                (folder, fingerprint),
            ).fetchone()
            if row:
                yield _load(row[0])

    def gone(
        self,
        folder: str,
        scan: int | None,
        signatures: Iterable[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Prior]:
        """Items whose title the scan does not have, a page at a time in title order (the
        caller may act on them, and so change them, between pages); only those of the given
        signatures if any are given."""
        seen = (
            "SELECT 1 FROM temp.preview_seen s WHERE s.title = m.title"
            if scan is None
            else "SELECT 1 FROM entries e WHERE e.folder = m.folder AND e.scan = :scan"
            " AND e.title = m.title"
        )
        chosen = ""
        if signatures is not None:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_signatures (signature TEXT)")
            self._db.execute("DELETE FROM wanted_signatures")
            self._db.executemany(
                "INSERT INTO wanted_signatures VALUES (?)", [(sig,) for sig in signatures]
            )
            chosen = " AND m.signature IN (SELECT signature FROM temp.wanted_signatures)"
        after = ("", "")
        while rows := self._db.execute(
            f"SELECT {_PRIOR_COLUMNS} FROM mirror_items m WHERE m.folder = :folder"
            f" AND (m.title, m.item_uuid) > (:title, :uuid) AND NOT EXISTS ({seen}){chosen}"
            " ORDER BY m.title, m.item_uuid LIMIT :limit",
            {
                "folder": folder,
                "scan": scan,
                "title": after[0],
                "uuid": after[1],
                "limit": page_size,
            },
        ).fetchall():
            for row in rows:
                yield _prior(row)
            after = (rows[-1][1], rows[-1][0])

    def scanned_count(self, folder: str, scan: int | None) -> int:
        if scan is None:
            return self._db.execute("SELECT count(*) FROM temp.preview_seen").fetchone()[0]
        return self._db.execute(
            "SELECT count(*) FROM entries WHERE folder = ? AND scan = ?", (folder, scan)
        ).fetchone()[0]

    def start_preview(self) -> None:
        """Temporary tables for `ingest plan`'s preview: nothing is written to the file."""
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS preview_seen (title TEXT PRIMARY KEY)")
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS preview_held (folder TEXT, scan INTEGER,"
            " fingerprint TEXT PRIMARY KEY, title TEXT, change TEXT, signature TEXT,"
            " item_uuid TEXT)"
        )

    def preview_seen(self, title: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO temp.preview_seen VALUES (?)", (title,))

    def begin_action(
        self, folder: str, item_uuid: str, action: str, detail: dict[str, Any]
    ) -> bool:
        """Record the intent of one change to Encord; True if the same change was already
        intended by a run that did not record it done (interrupted), so the caller checks
        what Encord has before acting again."""
        with self._db:
            row = self._db.execute(
                "SELECT status, detail FROM mirror_actions"
                " WHERE folder = ? AND item_uuid = ? AND action = ?",
                (folder, item_uuid, action),
            ).fetchone()
            self._db.execute(
                "INSERT INTO mirror_actions (folder, item_uuid, action, detail, status)"
                " VALUES (?, ?, ?, ?, 'intent') ON CONFLICT (folder, item_uuid, action)"
                " DO UPDATE SET detail = excluded.detail, status = 'intent'",
                (folder, item_uuid, action, json.dumps(detail, sort_keys=True)),
            )
        return row is not None and row[0] == "intent"

    def pending_actions(self, folder: str) -> int:
        return self._db.execute(
            "SELECT count(*) FROM mirror_actions WHERE folder = ? AND status = 'intent'",
            (folder,),
        ).fetchone()[0]

    def finish_repoint(self, folder: str, item_uuid: str, entry: Entry) -> None:
        """The item now stands for `entry`: its provenance, and the entry's item. The entry
        it stood for is no longer imported (should that object come back, it is a move)."""
        with self._db:
            self._db.execute(
                "UPDATE entries SET item_uuid = NULL WHERE folder = ? AND item_uuid = ?",
                (folder, item_uuid),
            )
            self._db.execute(
                "UPDATE entries SET item_uuid = ?, error = NULL WHERE folder = ? AND fingerprint = ?",
                (item_uuid, folder, entry.fingerprint),
            )
            self._upsert_mirrored(folder, item_uuid, entry)
            self._done(folder, item_uuid, "repoint")

    def finish_removal(
        self, folder: str, dataset: str, item_uuids: list[str], action: str, deleted: bool
    ) -> None:
        """Items unlinked from `dataset` (and deleted from the folder if `deleted`)."""
        with self._db:
            self._db.executemany(
                "DELETE FROM links WHERE dataset = ? AND item_uuid = ?",
                [(dataset, item_uuid) for item_uuid in item_uuids],
            )
            if deleted:
                pairs = [(folder, item_uuid) for item_uuid in item_uuids]
                self._db.executemany(
                    "DELETE FROM mirror_items WHERE folder = ? AND item_uuid = ?", pairs
                )
                # No entry is imported as a deleted item: if its object comes back, it is
                # planned afresh and uploaded again.
                self._db.executemany(
                    "UPDATE entries SET item_uuid = NULL, job_id = NULL, error = NULL"
                    " WHERE folder = ? AND item_uuid = ?",
                    pairs,
                )
            else:
                self._db.executemany(
                    "UPDATE mirror_items SET status = ? WHERE folder = ? AND item_uuid = ?",
                    [(UNLINKED, folder, item_uuid) for item_uuid in item_uuids],
                )
            for item_uuid in item_uuids:
                self._done(folder, item_uuid, action)

    def record_mirrored(self, folder: str, scan: int, page_size: int = 1000) -> None:
        """Provenance of every item the scan's entries are in Encord as, where it changed
        (on a sync with nothing new this reads the scan's entries once and writes nothing)."""
        while rows := self._db.execute(
            "SELECT e.item_uuid, e.entry FROM entries e WHERE e.folder = ? AND e.scan = ?"
            " AND e.item_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mirror_items m"
            " WHERE m.folder = e.folder AND m.item_uuid = e.item_uuid"
            " AND m.fingerprint = e.fingerprint AND m.status = 'present') LIMIT ?",
            (folder, scan, page_size),
        ).fetchall():
            with self._db:
                for item_uuid, text in rows:
                    self._upsert_mirrored(folder, item_uuid, _load(text))

    def seed_mirrored(self, folder: str, items: Iterable[tuple[str, str, tuple[str, ...]]]) -> None:
        """Provenance recovered from a Folder listing (item uuid, name, URLs), for a state
        that lost it: no ETags, so these items can be found gone, never changed or moved."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO mirror_items (folder, item_uuid, title, urls, etags)"
                " VALUES (?, ?, ?, ?, '[]')",
                [(folder, uuid, title, json.dumps(urls)) for uuid, title, urls in items],
            )

    def _upsert_mirrored(self, folder: str, item_uuid: str, entry: Entry) -> None:
        self._db.execute(
            "INSERT INTO mirror_items"
            " (folder, item_uuid, fingerprint, title, urls, etags, signature, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (folder, item_uuid) DO UPDATE SET"
            " fingerprint = excluded.fingerprint, title = excluded.title, urls = excluded.urls,"
            " etags = excluded.etags, signature = excluded.signature, status = excluded.status",
            (
                folder,
                item_uuid,
                entry.fingerprint,
                entry.title,
                json.dumps(entry.urls),
                json.dumps(entry.etags),
                entry_signature(entry),
                PRESENT,
            ),
        )

    def finish_action(self, folder: str, item_uuid: str, action: str) -> None:
        """An intended action found unnecessary (nothing to change in Encord)."""
        with self._db:
            self._done(folder, item_uuid, action)

    def _done(self, folder: str, item_uuid: str, action: str) -> None:
        self._db.execute(
            "UPDATE mirror_actions SET status = 'done' WHERE folder = ? AND item_uuid = ?"
            " AND action = ?",
            (folder, item_uuid, action),
        )

    def items_from_keys(
        self, folder: str, keys: Iterable[str], titles: Iterable[str], under: Iterable[str] = ()
    ) -> list[tuple[Prior, Entry | None]]:
        """The items whose provenance includes one of `keys`, each with the entry it was last
        imported as (None for provenance recovered from a Folder listing, which has no keys:
        then its title must be one of `keys`). Looked for by title, never through the whole
        folder: among the items titled one of `titles` or with a title starting with one of
        `under` (`ingest watch`: a batch's removed keys)."""
        wanted = set(keys)
        rows: dict[str, tuple] = {}
        for title in titles:
            for row in self._db.execute(
                f"SELECT {_PRIOR_COLUMNS}, fingerprint FROM mirror_items"
                " WHERE folder = ? AND title = ?",
                (folder, title),
            ):
                rows[row[0]] = row
        for prefix in under:
            for row in self._db.execute(
                f"SELECT {_PRIOR_COLUMNS}, fingerprint FROM mirror_items"
                " WHERE folder = ? AND title >= ? AND title < ?",
                (folder, prefix, prefix + "\U0010ffff"),
            ):
                rows[row[0]] = row
        found: list[tuple[Prior, Entry | None]] = []
        for row in rows.values():
            prior, fingerprint = _prior(row[:-1]), row[-1]
            if fingerprint is None:
                if prior.title in wanted:
                    found.append((prior, None))
                continue
            text = self._db.execute(
                "SELECT entry FROM entries WHERE folder = ? AND fingerprint = ?",
                (folder, fingerprint),
            ).fetchone()
            entry = _load(text[0]) if text else None
            if entry is not None and wanted.intersection(entry.keys):
                found.append((prior, entry))
        return sorted(found, key=lambda pair: (pair[0].title, pair[0].item_uuid))


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


# An entry's constructor arguments, stored so `ingest retry` can rebuild its manifest.
_ENTRY_FIELDS = (
    "kind",
    "title",
    "keys",
    "urls",
    "etags",
    "client_metadata",
    "create_video",
    "sizes",
)


def _dump(entry: Entry) -> str:
    return json.dumps({name: getattr(entry, name) for name in _ENTRY_FIELDS}, sort_keys=True)


def _load(text: str) -> Entry:
    fields = json.loads(text)
    for name in ("keys", "urls", "etags", "sizes"):
        if name in fields:  # `sizes`: absent from the entries of states older than mirroring
            fields[name] = tuple(fields[name])
    return Entry(**fields)


# Mirroring: the columns of mirror_items that make a `Prior`, in `_prior`'s order.
_PRIOR_COLUMNS = "item_uuid, title, urls, etags, signature, status"


def _prior(row: tuple) -> Prior:
    item_uuid, title, urls, etags, signature, status = row
    return Prior(
        item_uuid, title, tuple(json.loads(urls)), tuple(json.loads(etags)), signature, status
    )
