"""Run state: one SQLite file in the output directory, so a rerun resumes instead of repeating.

Each entry is keyed by (Files folder, fingerprint): a changed object has a new fingerprint and
is uploaded again, an unchanged one never is. Its progress is in its columns:

    planned    job, item_uuid and error all NULL
    submitted  job set (its number in `entry_jobs`): it is in that upload job's manifest
    uploaded   item_uuid set: the job imported it as that storage item
    failed     error set (JSON: url, error, subtask_uuid); `ingest retry` resubmits it
    linked     its item_uuid is in `links` for the Dataset

A sync writes only what changed. Which scans saw an entry is one interval, `seen_from` (the
scan since which it has been listed without a break) to `gone_at` (the first scan that no
longer listed it, NULL while it is listed; marked once the scan's listing is complete, and
undone by the next scan if that one never finished): an unchanged entry costs a lookup, not
a write. The interval is exact for the latest scans, the only ones read (the running one,
and the latest finished one for `retry`, `verify`, `status`). A partial scan (a batch of
`ingest watch`) records what it lists into the latest finished scan, and stands for just
that itself (`start_scan`). What `retry` needs to rebuild an entry beyond its title, kind
and first URL is one compact `marshal` blob; the first URL is '' when it is the folder's URL
base followed by the title (`url_bases`, `_first_url`). Links name their Dataset by a small
number (`datasets`), and the folder index (`folder_items`) its storage folder
(`storage_folders`), whose URL base its items' URLs are stored after in the same way ('' for
the base followed by the item's name). The index of a folder the run created is its jobs'
results, and an item a result gave an entry is not written again beside it: the entry holds
it (`items_in_entries`, `_HELD_ITEMS`) until anything but those results changes the folder.

`sidecars` keeps each `<key>.metadata.json` body read, with the ETag it was listed with, so a
sync GETs only the sidecars that are new or changed (`cached_sidecars`).

Mirroring's provenance of an item uploaded for an entry is the entry itself (`mirrored`: 1
present, 2 unlinked; its content signature's key is in the row from the start), so it is
recorded by one column, only for entries not yet `mirrored` (a partial index holds just
those); `mirror_items` keeps only items recovered from a Folder listing (or from layout 4).

What an unchanged sync would otherwise read in full is proven unchanged instead: `gone` is
not read when the latest finished scan had no gone item and this scan lists every entry
that one did (`gone_checked`); `unlinked_items` and the linked count are not read when
this scan lists exactly the entries of one all of whose items were linked, and no entry got
another item nor was a link removed since (`links_checked`, counted by `item_changes`).

Every change is one SQLite transaction, so a kill at any moment leaves a consistent file.
What only records Encord's outcomes (job results, finished jobs, links) shares one with the
changes after it (`_outcome`): a kill loses what the rerun settles or links again.
Nothing here holds a secret: no key, no external ID.
"""

from __future__ import annotations

import fcntl
import hashlib
import heapq
import json
import marshal
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any

from ingest.encord_format import KINDS, SINGLE_FILE_KINDS
from ingest.errors import UserError
from ingest.mirror.diff import PRESENT, UNLINKED, Change, Held, Prior, entry_signature
from ingest.model import Entry, ReadObject
from ingest.plan.dicom import DicomHeader, ReadDicomHeader

STATE_FILE = "state.sqlite"
# Entries looked up per query while recording a scan: per-statement costs vanish.
SCAN_LOOKUP_BATCH = 1000
# Rows written per transaction while recording a scan: few commits, little lost on a kill
# (the upload jobs commit whatever they cover anyway, see `record_job`).
SCAN_COMMIT_EVERY = 50_000
# New entries whose row ids this connection keeps (the latest recorded), so that `record_job`
# writes a job's entries by id rather than through the fingerprint index (random order).
NEW_IDS_KEPT = 20_000  # two of the largest jobs (10,000 entries); ~5 MB
# Rows of Encord's outcomes (job results, finished jobs, links) written per commit: the
# pages of their random-order indexes (items, links) are written once per commit, not once
# per job or link batch. What a kill loses the rerun redoes: a job not finished is settled
# again from Encord, and an item linked again is skipped (`duplicates_behavior=SKIP`).
OUTCOME_COMMIT_EVERY = 50_000
# Bumped when the tables change: layouts 5 to 10 are migrated in place (`_fold_provenance`;
# from 6, `url_bases` is new, its rows' full first URLs stay valid, and `_number_datasets`;
# up to 7, `_fold_intent_entries`; up to 8, `_number_storage_folders`; up to 10,
# `_storage_folder_columns`); an older file is rebuilt (losing the entries is safe: the rerun
# submits everything again and Encord skips what it already has).
_SCHEMA_VERSION = 11
# Page cache, in KiB (negative: a size, not pages): the random-order index pages of a large
# first run stay in memory between its commits, instead of being read and spilled again.
_CACHE_KIB = 65536
# The tables tied to an older entries' layout or to scan numbers (which restart once `scans`
# is dropped); the others (jobs, job intents, links, recovered provenance...) stay valid.
_TABLES = (
    "scans",
    "entries",
    "entry_jobs",
    "mirror_held",
    "gone_checked",
    "links_checked",
    "item_changes",
    "verified",
)

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
    kind INTEGER NOT NULL,
    first_url TEXT NOT NULL, -- '' when it is the folder's base followed by the title
    rebuild BLOB NOT NULL,
    seen_from INTEGER NOT NULL,
    gone_at INTEGER,
    job INTEGER,
    item_uuid TEXT,
    error TEXT,
    signature INTEGER,
    mirrored INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_fingerprint ON entries (folder, fingerprint);
-- Partial indexes hold only the rows their lookups can find: entries submitted (a job's
-- result names them), failed (retry).
-- A job's entries, matched to its result's names and URLs in Python (a job is bounded).
CREATE INDEX IF NOT EXISTS entries_by_job ON entries (job) WHERE job IS NOT NULL;
-- Submitted entries not given an item or error yet (`unmatched_entries`, read every run):
-- none once the jobs are settled, so an unchanged run counts nothing.
CREATE INDEX IF NOT EXISTS entries_unmatched ON entries (folder)
    WHERE job IS NOT NULL AND item_uuid IS NULL AND error IS NULL;
-- The upload jobs' ids as the small numbers `entries.job` holds.
CREATE TABLE IF NOT EXISTS entry_jobs (
    number INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS failed_entries ON entries (title) WHERE error IS NOT NULL;
CREATE INDEX IF NOT EXISTS gone_entries ON entries (gone_at) WHERE gone_at IS NOT NULL;
-- Verification joins the links with their entries by item (`linked_rows`).
CREATE INDEX IF NOT EXISTS entries_by_item ON entries (item_uuid) WHERE item_uuid IS NOT NULL;
-- Imported entries not recorded as their item's present provenance (`record_mirrored`):
-- every one after the uploads, none once recorded, so an unchanged sync reads nothing.
CREATE INDEX IF NOT EXISTS entries_to_mirror ON entries (id)
    WHERE item_uuid IS NOT NULL AND mirrored != 1;
-- The provenance (`mirrored` != 0) by title (and status: `mirrored_count` reads this index
-- alone), and by content signature (moves).
CREATE INDEX IF NOT EXISTS entries_mirrored ON entries (folder, title, mirrored)
    WHERE mirrored != 0;
CREATE INDEX IF NOT EXISTS entries_by_signature ON entries (signature) WHERE mirrored != 0;
-- `mirrored`: the entry's item has its provenance as the entry's; not once the item changes.
CREATE TRIGGER IF NOT EXISTS entries_item_changed AFTER UPDATE OF item_uuid ON entries
    WHEN old.mirrored != 0 AND old.item_uuid IS NOT new.item_uuid
    BEGIN UPDATE entries SET mirrored = 0 WHERE id = new.id; END;
-- Per folder, the URL its entries' first URLs usually are their titles after (the first new
-- entry's, kept): those store '' (`_first_url`).
CREATE TABLE IF NOT EXISTS url_bases (
    base_folder TEXT PRIMARY KEY,
    base TEXT NOT NULL
);
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
-- `dataset`: the Dataset's number in `datasets` (layout 7), not its 36-character hash.
CREATE TABLE IF NOT EXISTS links (
    dataset INTEGER NOT NULL,
    item_uuid TEXT NOT NULL,
    PRIMARY KEY (dataset, item_uuid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS datasets (
    number INTEGER PRIMARY KEY,
    dataset TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS job_intents (
    intent INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL,
    folder_uuid TEXT NOT NULL,
    manifest TEXT NOT NULL,
    started_at REAL NOT NULL,
    fingerprints TEXT NOT NULL DEFAULT '[]' -- its entries', a JSON array (layout 8)
);
CREATE TABLE IF NOT EXISTS dedupe_pending (
    folder TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (folder, fingerprint)
);
-- Folders whose index (`folder_items`) matched the entries at the last verification, with
-- no change to the folder since (an upload's intent or a mirror action removes the mark).
CREATE TABLE IF NOT EXISTS folder_index_current (
    folder TEXT PRIMARY KEY,
    folder_uuid TEXT NOT NULL
);
-- `storage_folder`: the folder's number in `storage_folders` (layout 9), not its 36-character
-- uuid in the row and each of its indexes. `url`: NULL for an item without a single file (a
-- group, a series), '' when it is the folder's URL base followed by the name (layout 10), as
-- an import's items' URLs are: neither the row nor an index then holds the URL whole.
CREATE TABLE IF NOT EXISTS folder_items (
    storage_folder INTEGER NOT NULL,
    item_uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (storage_folder, item_uuid)
);
-- Looked up by URL (`_items_at_url`): an item stored with its URL whole by that URL, one
-- stored as '' by its name. An item without a single file by its name (the items matched
-- to groups and series). A query names the index's condition to use it.
CREATE INDEX IF NOT EXISTS folder_items_by_url ON folder_items (storage_folder, url)
    WHERE url != '';
CREATE INDEX IF NOT EXISTS folder_items_by_base_name ON folder_items (storage_folder, name)
    WHERE url = '';
CREATE INDEX IF NOT EXISTS folder_items_by_name ON folder_items (storage_folder, name)
    WHERE url IS NULL;
-- `url_base`: what its items' URLs are their names after (`_folder_url`), from the first
-- item indexed whose URL ends with its name, then kept: the stored '' URLs depend on it.
-- `items_in_entries` (layout 11): 1 while the index is the results of the jobs into a folder
-- the run created (`folder_created`), whose items given to entries are not in `folder_items`
-- but held by those entries (`_HELD_ITEMS`): the uuid, the title as the name, the first URL.
CREATE TABLE IF NOT EXISTS storage_folders (
    number INTEGER PRIMARY KEY,
    folder_uuid TEXT NOT NULL UNIQUE,
    url_base TEXT,
    items_in_entries INTEGER NOT NULL DEFAULT 0
);
-- Per folder and Dataset, the latest scan all of whose imported entries were linked, as of
-- the `item_changes` count then (see `unlinked_items`).
CREATE TABLE IF NOT EXISTS links_checked (
    folder TEXT NOT NULL,
    dataset TEXT NOT NULL,
    scan INTEGER NOT NULL,
    item_changes INTEGER NOT NULL,
    PRIMARY KEY (folder, dataset)
);
-- Per folder and Dataset, the latest scan verification found exact, with what it counted
-- (see `proven_verification`).
CREATE TABLE IF NOT EXISTS verified (
    folder TEXT NOT NULL,
    dataset TEXT NOT NULL,
    folder_uuid TEXT NOT NULL,
    scan INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    items INTEGER NOT NULL,
    PRIMARY KEY (folder, dataset)
);
-- How many changes so far gave entries other items or removed links (one row).
CREATE TABLE IF NOT EXISTS item_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dicom_headers (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    series_uid TEXT,
    instance_number INTEGER
);
"""


def _stored_url(url: str, base: str, name: str) -> str:
    """How the state stores `url`, of an entry titled or an item named `name`: '' when it is
    `base` (its folder's URL base) followed by the name, else whole (`_whole_url`)."""
    return "" if url == base + name else url


def _whole_url(stored: str, base: str, name: str) -> str:
    """The SQL of a URL stored as `_stored_url` stores it (each argument an SQL expression)."""
    return f"CASE {stored} WHEN '' THEN {base} || {name} ELSE {stored} END"


def _first_url(alias: str = "") -> str:
    """The SQL of an entry's first URL (`alias`: the entries' table alias with its dot)."""
    return _whole_url(
        f"{alias}first_url",
        f"(SELECT base FROM url_bases WHERE base_folder = {alias}folder)",
        f"{alias}title",
    )


# The fingerprints of job intent `:intent`'s entries, a JSON array.
_INTENT_FINGERPRINTS = "(SELECT fingerprints FROM job_intents WHERE intent = :intent)"
# The number in `datasets` of the Dataset given as the parameter (NULL, matching no link, for
# a Dataset with none recorded); computed once per statement.
_DATASET_NUMBER = "(SELECT number FROM datasets WHERE dataset = ?)"
# An entry Encord imports from one URL (matched to its item by URL); the others (image groups,
# DICOM series) are matched by title. `kind` is the kind's position in `KINDS`.
_SINGLE_FILE = f"kind IN ({', '.join(str(KINDS.index(kind)) for kind in SINGLE_FILE_KINDS)})"


def _storage_folder_number(parameter: str = "?") -> str:
    """The SQL of the number in `storage_folders` of the folder whose uuid is `parameter`
    (NULL, matching no item, for a folder never indexed); computed once per statement."""
    return f"(SELECT number FROM storage_folders WHERE folder_uuid = {parameter})"


# The number of the folder whose uuid is the parameter `?`, and of the one named `:folder_uuid`.
_STORAGE_FOLDER = _storage_folder_number()
_NAMED_STORAGE_FOLDER = _storage_folder_number(":folder_uuid")
_IN_FOLDER = f"f.storage_folder = {_NAMED_STORAGE_FOLDER}"


def _items_at_url(folder: str, url: str) -> str:
    """The SQL of the folder index's items (item_uuid, created_at) at URL `url` in the folder
    numbered `folder` (both SQL expressions): those stored with the URL whole, and those
    stored as '' whose name follows the folder's URL base in it; one index search each."""
    return (
        "SELECT item_uuid, created_at FROM folder_items"
        f" WHERE storage_folder = {folder} AND url != '' AND url = {url}"
        " UNION ALL SELECT b.item_uuid, b.created_at FROM folder_items b"
        " JOIN storage_folders s ON s.number = b.storage_folder"
        f" WHERE b.storage_folder = {folder} AND b.url = ''"
        f" AND b.name = substr({url}, length(s.url_base) + 1)"
        f" AND substr({url}, 1, length(s.url_base)) = s.url_base"
    )


# The URL of folder item `f` (NULL for an item without a single file).
_ITEM_URL = _whole_url(
    "f.url", "(SELECT url_base FROM storage_folders WHERE number = f.storage_folder)", "f.name"
)
# The folder index's item for entry `e` (parameter `:folder_uuid`), NULL if it has none: by
# URL for a single file, by title for a group, the newest of several (a changed group is a
# new item). Subqueries, not one with the choice inside its condition: each is one search
# of its index, where a condition that chooses scans the folder's items per entry.
_MATCHING_ITEM = (
    f"CASE WHEN e.{_SINGLE_FILE} THEN (SELECT item_uuid FROM"
    f" ({_items_at_url(_NAMED_STORAGE_FOLDER, _first_url('e.'))})"
    " ORDER BY created_at DESC LIMIT 1)"
    f" ELSE (SELECT f.item_uuid FROM folder_items f WHERE {_IN_FOLDER}"
    " AND f.url IS NULL AND f.name = e.title ORDER BY f.created_at DESC LIMIT 1) END"
)
# The items of a folder whose entries hold them (`items_in_entries`): (item_uuid, name, URL
# whole or NULL) of each entry given an item by one of the folder's jobs (the parameter:
# their numbers in `entry_jobs`, a JSON array, see `_held_jobs`).
_HELD_ITEMS = (
    f"SELECT item_uuid, title AS name, CASE WHEN {_SINGLE_FILE} THEN {_first_url()} END AS url"
    " FROM entries WHERE item_uuid IS NOT NULL AND job IN (SELECT value FROM json_each(?))"
)
# Encord's clock against ours, when telling a group's fresh duplicates from its old versions.
GROUP_CLOCK_SKEW_SECONDS = 600

# Mirroring (ingest/mirror). What each storage item a sync left in the folder came from (its
# provenance), so a later sync decides deletions and moves without asking Encord; status
# 'present' (in the Dataset) or 'unlinked' (left in the folder only). An item uploaded for an
# entry has the entry as its provenance (`entries.mirrored`); `mirror_items` holds the others:
# recovered from a Folder listing, or kept from layout 4, with their URLs and ETags as JSON
# (and a signature as `signature_text`). `signature` columns: the signature's key
# (`_signature_key`), for lookups.
# `mirror_held`: entries of a scan kept out of the upload stream until the mirror step has
# decided them (a move to re-point, a changed item to replace). `mirror_actions`: each
# change to Encord, recorded as an intent before it is made and done after.
_MIRROR_SCHEMA = """
CREATE TABLE IF NOT EXISTS mirror_items (
    folder TEXT NOT NULL,
    item_uuid TEXT NOT NULL,
    title TEXT NOT NULL,
    urls TEXT NOT NULL,
    etags TEXT NOT NULL,
    signature INTEGER,
    signature_text TEXT,
    status TEXT NOT NULL DEFAULT 'present',
    PRIMARY KEY (folder, item_uuid)
);
-- With the status: `mirrored_count` reads this index alone.
CREATE INDEX IF NOT EXISTS mirror_items_by_title ON mirror_items (folder, title, status);
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
-- Per folder, the latest scan whose items `gone` found none of (see `gone`).
CREATE TABLE IF NOT EXISTS gone_checked (
    folder TEXT PRIMARY KEY,
    scan INTEGER NOT NULL
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
# The entries scan `?` saw (parameters: folder, scan, scan). `+folder`: not through the
# fingerprint index, whose order is random; in the table's order, or another index's.
_IN_SCAN = "+folder = ? AND seen_from <= ? AND (gone_at IS NULL OR gone_at > ?)"
# The entries listed before scan `?` and still listed then (parameters: folder, scan).
_LISTED_BEFORE = "+folder = ? AND seen_from < ? AND gone_at IS NULL"


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the state file at `path`, set up as the run state uses it."""
    db = sqlite3.connect(path)
    # WAL: readers (`status`, `verify`) never wait for a run; NORMAL sync: a commit is safe
    # from a killed process, and a power cut can only lose the last few commits, which a
    # rerun redoes (resubmitting is harmless, see `ingest.encord.upload.submit`).
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    return db


class RunState:
    """`exclusive`: for the commands that upload. Two of them on one state would both see
    the same entries as unsubmitted and upload them twice, so the second one is refused."""

    def __init__(self, path: Path, exclusive: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = _lock(path.with_name(f"{path.name}.lock")) if exclusive else None
        self._db = connect(path)
        self._create_tables()
        # Sidecars read from S3 by the metadata stage's threads, written by this connection
        # with the scan's own commits (`record_scan`).
        self._sidecars_read: deque[tuple[str, str, bytes]] = deque()
        self._lookups: list[sqlite3.Connection] = []
        # The scans recorded to their end (their gone entries marked), not finished yet.
        self._recorded: set[int] = set()
        # Partial scan → the finished scan its entries are recorded into (`start_scan`).
        self._partial: dict[int, int] = {}
        # Scan → the finished scan before it, when it lists every entry that one did (its
        # titles are a superset of that scan's: `gone`).
        self._lists_all_of: dict[int, int | None] = {}
        # Scan → the finished scan before it, when it lists exactly the entries that did.
        self._same_as: dict[int, int | None] = {}
        # Links recorded by this connection (`unlinked_items` checks its batches were).
        self._links_recorded = 0
        # Rows of outcomes written since the last commit (`_outcome`).
        self._uncommitted = 0
        # Folders this connection created (`folder_created`): their index follows its jobs.
        self._indexed_by_results: set[str] = set()
        # (folder, fingerprint) → row id of the latest new entries (`NEW_IDS_KEPT`).
        self._new_ids: OrderedDict[tuple[str, str], int] = OrderedDict()
        # (folder, scan) whose titles `temp.scan_titles` holds (`_list_scan_titles`).
        self._titles_of: tuple[str, int] | None = None

    @classmethod
    def in_directory(cls, directory: Path, exclusive: bool = False) -> RunState:
        return cls(directory / STATE_FILE, exclusive)

    def close(self) -> None:
        for lookup in self._lookups:
            lookup.close()
        self._db.commit()  # the outcomes recorded since the last commit (`_outcome`)
        self._db.close()
        if self._lock is not None:
            self._lock.close()  # releases the lock

    def _create_tables(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version != _SCHEMA_VERSION:
            self._db.execute("BEGIN IMMEDIATE")  # DDL too: the rebuild is one transaction
            with self._db:
                # Read again under the lock: another process may have rebuilt it meanwhile.
                (version,) = self._db.execute("PRAGMA user_version").fetchone()
                if version != _SCHEMA_VERSION:
                    self._rebuild_layout(version)
        self._db.executescript(_SCHEMA + _MIRROR_SCHEMA)

    def _rebuild_layout(self, version: int) -> None:
        """From layout `version` to today's, in the caller's transaction."""
        if version == 5:
            self._fold_provenance()
        elif version not in (6, 7, 8, 9, 10):  # 6's entries are today's (`url_bases` is new)
            for table in _TABLES:  # an older layout, or none: start afresh
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
            if version < 5:
                self._migrate_links()
                if self._exists("mirror_items"):
                    # Provenance read from entries is lost with them: the folder's is dropped
                    # whole, so the next run recovers it from the Folder (`seed_mirrored`).
                    self._db.execute(
                        "DELETE FROM mirror_items WHERE folder IN"
                        " (SELECT folder FROM mirror_items WHERE urls IS NULL)"
                    )
                    self._migrate_mirror_items("signature")
        if version < 7:
            self._number_datasets()
        self._fold_intent_entries()
        self._number_storage_folders()
        self._storage_folder_columns()
        self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _number_datasets(self) -> None:
        """An older layout's links (the Dataset's hash in each) into today's table, each
        naming its Dataset by its number in `datasets`, in the caller's transaction."""
        if self._exists("links"):
            self._renumber("links", "dataset", ("datasets", "dataset"), ("item_uuid",))

    def _number_storage_folders(self) -> None:
        """An older layout's folder index (the folder's uuid in each row and index) into
        today's table, each item naming its folder by its number in `storage_folders`, in
        the caller's transaction."""
        if not self._exists("folder_items"):
            return
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(folder_items)")]
        if "folder_uuid" not in columns:
            return
        # The indexes keep their names through a rename: dropped, so that today's are made.
        self._db.execute("DROP INDEX IF EXISTS folder_items_by_url")
        self._db.execute("DROP INDEX IF EXISTS folder_items_by_name")
        self._renumber(
            "folder_items",
            "storage_folder",
            ("storage_folders", "folder_uuid"),
            ("item_uuid", "name", "url", "created_at"),
        )

    def _storage_folder_columns(self) -> None:
        """An older layout's storage folders into today's, in the caller's transaction.
        Up to layout 9 (each URL whole): they get their URL base (none yet: set by the next
        item indexed), and the URL index today's condition; a URL stored whole stays valid,
        so the rows stay as they are, until the folder is indexed again. Up to 10: every
        item is in `folder_items`, none held by the entries."""
        if not self._exists("storage_folders"):
            return
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(storage_folders)")]
        if "url_base" not in columns:
            self._db.execute("ALTER TABLE storage_folders ADD COLUMN url_base TEXT")
            self._db.execute("DROP INDEX IF EXISTS folder_items_by_url")  # made again, partial
        if "items_in_entries" not in columns:
            self._db.execute(
                "ALTER TABLE storage_folders ADD COLUMN items_in_entries INTEGER NOT NULL DEFAULT 0"
            )

    def _renumber(
        self, table: str, column: str, numbers: tuple[str, str], others: tuple[str, ...]
    ) -> None:
        """`table` of an older layout, which held each row's `key` whole, into today's, whose
        `column` is its number in the `numbers` table (`numbers` = (that table, `key`)), the
        `others` columns as they were; in the caller's transaction."""
        number_table, key = numbers
        self._db.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
        for statement in _SCHEMA.split(";"):
            if any(f"TABLE IF NOT EXISTS {name} " in statement for name in (table, number_table)):
                self._db.execute(statement)
        self._db.execute(
            f"INSERT OR IGNORE INTO {number_table} ({key}) SELECT DISTINCT {key} FROM {table}_old"
        )
        self._db.execute(
            f"INSERT INTO {table} ({column}, {', '.join(others)})"
            f" SELECT n.number, {', '.join('o.' + name for name in others)} FROM {table}_old o"
            f" JOIN {number_table} n ON n.{key} = o.{key}"
        )
        self._db.execute(f"DROP TABLE {table}_old")

    def _fold_intent_entries(self) -> None:
        """An older layout's job intents' entries (a row each) into their intents, as the
        JSON array of their fingerprints, in the caller's transaction."""
        if not self._exists("intent_entries"):
            return
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(job_intents)")]
        if "fingerprints" not in columns:
            self._db.execute(
                "ALTER TABLE job_intents ADD COLUMN fingerprints TEXT NOT NULL DEFAULT '[]'"
            )
        self._db.execute(
            "UPDATE job_intents SET fingerprints = (SELECT json_group_array(fingerprint)"
            " FROM intent_entries i WHERE i.intent = job_intents.intent)"
            " WHERE intent IN (SELECT intent FROM intent_entries)"
        )
        self._db.execute("DROP TABLE intent_entries")

    def _fold_provenance(self) -> None:
        """Layout 5's provenance recorded from entries (`mirror_items` rows without URLs)
        into their entries, each with its signature's key, in the caller's transaction."""
        self._db.execute("DROP INDEX IF EXISTS entries_to_mirror")  # another condition now
        self._db.execute("DROP TRIGGER IF EXISTS entries_item_changed")
        self._db.execute("ALTER TABLE entries ADD COLUMN signature INTEGER")
        self._db.create_function("entry_signature_key", 4, _entry_signature_key)
        self._db.execute(
            "UPDATE entries SET signature = entry_signature_key(title, kind, first_url, rebuild)"
        )
        if self._exists("mirror_items"):
            # Layout 5 marked `mirrored` only the present ones.
            self._db.execute("UPDATE entries SET mirrored = 0 WHERE mirrored != 0")
            self._db.execute(
                "UPDATE entries AS e SET mirrored = CASE m.status WHEN ? THEN 1 ELSE 2 END"
                " FROM mirror_items m WHERE m.urls IS NULL AND m.folder = e.folder"
                " AND m.fingerprint = e.fingerprint AND m.item_uuid = e.item_uuid",
                (PRESENT,),
            )
            self._db.execute("DELETE FROM mirror_items WHERE urls IS NULL")
            self._migrate_mirror_items("signature_text")

    def _migrate_links(self) -> None:
        """Layout 4's links (a rowid table and its key's index: each row twice) into a
        WITHOUT ROWID table, in the caller's transaction."""
        if not self._exists("links"):
            return
        self._db.execute("ALTER TABLE links RENAME TO links_old")
        self._db.execute(
            "CREATE TABLE links (dataset TEXT NOT NULL, item_uuid TEXT NOT NULL,"
            " PRIMARY KEY (dataset, item_uuid)) WITHOUT ROWID"
        )
        self._db.execute("INSERT INTO links SELECT dataset, item_uuid FROM links_old")
        self._db.execute("DROP TABLE links_old")

    def _exists(self, table: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def _migrate_mirror_items(self, signature_text: str) -> None:
        """An older layout's recovered provenance (its signature as text in the column
        `signature_text`) into today's table, in the caller's transaction."""
        self._db.execute("ALTER TABLE mirror_items RENAME TO mirror_items_old")
        for index in ("mirror_items_by_title", "mirror_items_by_signature"):
            self._db.execute(f"DROP INDEX IF EXISTS {index}")
        for statement in _MIRROR_SCHEMA.split(";"):
            if "mirror_items" in statement and statement.strip():
                self._db.execute(statement)
        self._db.create_function("signature_key", 1, _signature_key, deterministic=True)
        self._db.execute(
            "INSERT INTO mirror_items (folder, item_uuid, title, urls, etags, signature,"
            f" signature_text, status) SELECT folder, item_uuid, title, urls, etags,"
            f" signature_key({signature_text}), {signature_text}, status FROM mirror_items_old"
        )
        self._db.execute("DROP TABLE mirror_items_old")

    def __enter__(self) -> RunState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- scans -------------------------------------------------------------------------

    def start_scan(self, folder: str, partial: bool = False) -> int:
        """A new scan of the folder. What an earlier scan that never finished (killed)
        marked gone is listed again: only a finished scan's marks count.

        `partial`: the scan lists a part of the bucket only (a batch of `ingest watch`).
        What it lists is recorded into the latest finished scan (the mirror of the bucket,
        where it marks nothing gone); the scan itself, never finished, stands for just what
        it listed, in this connection (a temporary table)."""
        mirror = self.latest_scan(folder) if partial else None
        if partial and mirror is None:
            raise ValueError(f"a partial scan of {folder!r} needs a finished scan to join")
        with self._db:
            self._db.execute(
                "UPDATE entries SET gone_at = NULL WHERE gone_at IS NOT NULL AND gone_at IN"
                " (SELECT id FROM scans WHERE folder = ? AND finished = 0)",
                (folder,),
            )
            (scan,) = self._db.execute(
                "INSERT INTO scans (folder) VALUES (?) RETURNING id", (folder,)
            ).fetchone()
        if mirror is not None:
            self._db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS partial_scans"
                " (scan INTEGER, fingerprint TEXT, PRIMARY KEY (scan, fingerprint))"
            )
            self._partial[scan] = mirror
        return int(scan)

    def finish_scan(self, scan: int) -> None:
        """Mark the scan finished: from now on it is the mirror of the bucket."""
        if scan not in self._recorded:
            raise ValueError(f"scan {scan} was not recorded to its end (record_scan)")
        with self._db:
            self._db.execute("UPDATE scans SET finished = 1 WHERE id = ?", (scan,))
        self._recorded.discard(scan)

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
        into = self._partial.get(scan, scan)  # the scan whose interval records them
        reference = self.latest_scan(folder)
        seen = _SeenRows()
        earlier = _EarlierEntries(self._db, folder, into)
        written = changed = 0
        entries = iter(entries)
        try:
            while batch := list(islice(entries, SCAN_LOOKUP_BATCH)):
                unsubmitted, writes = self._record_batch(folder, into, batch, earlier, seen)
                changed += writes
                if into != scan:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO temp.partial_scans VALUES (?, ?)",
                        [(scan, entry.fingerprint) for entry in batch],
                    )
                written += writes
                if written >= SCAN_COMMIT_EVERY:
                    self._store_sidecars()
                    self._db.commit()
                    written = 0
                yield from unsubmitted
        finally:
            self._store_sidecars()
            self._db.commit()
        if into == scan:
            if self._mark_gone(scan, seen, earlier) == 0:
                self._lists_all_of[scan] = reference
                if changed == 0:
                    self._same_as[scan] = reference
            self._recorded.add(scan)

    def _mark_gone(self, scan: int, seen: _SeenRows, earlier: _EarlierEntries) -> int:
        """Mark the entries listed before the scan but not by it as gone at `scan`, as soon
        as its listing is complete, so the running scan's entries are exact too (the mirror
        step reads them before the scan finishes).

        Only what left the bucket is written: when the scan saw as many of the entries
        listed before it as are still listed, none left and nothing is read either. Return
        how many left."""
        if earlier.listed_before() == seen.count:
            return 0
        with self._db:
            rows = self._db.execute(
                f"SELECT id FROM entries WHERE {_LISTED_BEFORE}", (earlier.folder, scan)
            )
            gone = [(scan, row_id) for (row_id,) in rows if row_id not in seen]
            self._db.executemany("UPDATE entries SET gone_at = ? WHERE id = ?", gone)
        return len(gone)

    def _members(self, folder: str, scan: int) -> tuple[str, tuple[object, ...]]:
        """The condition on `entries`, and its parameters, that selects the scan's entries."""
        if scan in self._partial:
            return (
                "folder = ? AND fingerprint IN"
                " (SELECT fingerprint FROM temp.partial_scans WHERE scan = ?)",
                (folder, scan),
            )
        return _IN_SCAN, (folder, scan, scan)

    def _record_batch(
        self,
        folder: str,
        scan: int,
        batch: list[Entry],
        earlier: _EarlierEntries,
        seen: _SeenRows,
    ) -> tuple[list[Entry], int]:
        """Record one batch; return its entries never submitted, and how many rows it wrote."""
        lined_up = earlier.take_if_next([entry.fingerprint for entry in batch])
        if lined_up is not None:  # an unchanged rerun's batch: the next earlier entries, all
            seen.add_ascending([row_id for row_id, _, _ in lined_up])
            return [entry for entry, row in zip(batch, lined_up, strict=True) if row[2]], 0
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
        new: list[tuple[str, str, str, int, str, bytes, int | None, int]] = []
        base: str | None = None
        for entry, row in zip(batch, progress, strict=True):
            if row is None:
                known = found.get(entry.fingerprint)
                if known is None:
                    if base is None:
                        base = self._url_base(folder, entry)
                    first_url = entry.urls[0]
                    new.append(
                        (
                            folder,
                            entry.fingerprint,
                            entry.title,
                            _KIND_NUMBER[entry.kind],
                            _stored_url(first_url, base, entry.title),
                            _compact(entry),
                            _content_key(entry.etags, entry.sizes),
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
            inserted = self._db.executemany(
                "INSERT OR IGNORE INTO entries (folder, fingerprint, title, kind, first_url,"
                " rebuild, signature, seen_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            ).rowcount
            if inserted == len(new):  # each given the next id
                (last,) = self._db.execute("SELECT last_insert_rowid()").fetchone()
                self._keep_new_ids(folder, [row[1] for row in new], last - len(new) + 1)
        if returning:
            self._db.executemany(
                "UPDATE entries SET seen_from = ?, gone_at = NULL WHERE id = ?", returning
            )
        return unsubmitted, len(new) + len(returning)

    def _keep_new_ids(self, folder: str, fingerprints: list[str], first: int) -> None:
        """Keep the row ids of new entries, `first` and on, dropping the oldest kept."""
        kept = self._new_ids
        for row_id, fingerprint in enumerate(fingerprints, first):
            kept[(folder, fingerprint)] = row_id
        while len(kept) > NEW_IDS_KEPT:
            kept.popitem(last=False)

    def _url_base(self, folder: str, entry: Entry) -> str:
        """The folder's URL base, the one of `entry` if it has none yet: written in the
        transaction of the rows that rely on it (not kept across batches, which a rollback
        could part from it)."""
        first_url, title = entry.urls[0], entry.title
        ours = first_url[: len(first_url) - len(title)] if first_url.endswith(title) else ""
        self._db.execute(
            "INSERT OR IGNORE INTO url_bases (base_folder, base) VALUES (?, ?)", (folder, ours)
        )
        (base,) = self._db.execute(
            "SELECT base FROM url_bases WHERE base_folder = ?", (folder,)
        ).fetchone()
        return str(base)

    def _look_up(self, folder: str, fingerprints: list[str]) -> dict[str, tuple[int, bool, Any]]:
        """fingerprint → (row id, never submitted, gone_at), of those recorded, in one query."""
        rows = self._db.execute(
            "SELECT fingerprint, id, job IS NULL AND item_uuid IS NULL AND error IS NULL,"
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
        is sent: if the process dies before `record_job`, the rerun knows a job may exist.
        Its entries are one JSON array in its row (a row per entry cost as much as the
        entry's own insert, and was deleted with the intent)."""
        with self._db:
            if folder_uuid not in self._indexed_by_results:
                self._db.execute("DELETE FROM folder_index_current WHERE folder = ?", (folder,))
            intent = self._db.execute(
                "INSERT INTO job_intents (folder, folder_uuid, manifest, started_at,"
                " fingerprints) VALUES (?, ?, ?, ?, ?)",
                (
                    folder,
                    folder_uuid,
                    manifest,
                    time.time(),
                    json.dumps(list(dict.fromkeys(fingerprints))),
                ),
            ).lastrowid
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
        self._write_out_held_items(folder_uuid)
        (count,) = self._db.execute(
            "SELECT count(*) FROM job_intents j, json_each(j.fingerprints) i"
            " JOIN entries e ON e.folder = j.folder AND e.fingerprint = i.value"
            f" WHERE j.intent = :intent AND {_MATCHING_ITEM} IS NULL",
            {"intent": intent, "folder_uuid": folder_uuid},
        ).fetchone()
        return count

    def settle_intent(self, intent: int, folder: str, folder_uuid: str, manifest: str) -> int:
        """Give the entries of an orphaned start the items the folder index holds for them
        (as if a job `intent-N` had imported them), leave the rest unsubmitted, and mark all
        of them for de-duplication (the orphaned job may have imported them twice over with a
        resubmission). Return how many were found."""
        job_id = f"intent-{intent}"
        self._write_out_held_items(folder_uuid)
        with self._db:
            self._items_changed()
            (started_at,) = self._db.execute(
                "SELECT started_at FROM job_intents WHERE intent = ?", (intent,)
            ).fetchone()
            self._db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, folder, folder_uuid, manifest, status)"
                " VALUES (?, ?, ?, ?, 'ORPHANED')",
                (job_id, folder, folder_uuid, manifest),
            )
            found = self._db.execute(
                f"UPDATE entries AS e SET job = :job, error = NULL, item_uuid = {_MATCHING_ITEM}"
                " WHERE e.folder = :folder AND e.item_uuid IS NULL AND e.fingerprint IN"
                f" (SELECT value FROM json_each({_INTENT_FINGERPRINTS}))"
                f" AND {_MATCHING_ITEM} IS NOT NULL",
                {
                    "job": self._job_number(job_id),
                    "folder_uuid": folder_uuid,
                    "folder": folder,
                    "intent": intent,
                },
            ).rowcount
            self._db.execute(
                "INSERT OR IGNORE INTO dedupe_pending (folder, fingerprint, since)"
                f" SELECT :folder, value, :since FROM json_each({_INTENT_FINGERPRINTS})",
                {"folder": folder, "since": started_at, "intent": intent},
            )
            self._delete_intent(intent)
        return found

    def _delete_intent(self, intent: int) -> None:
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
            number = self._job_number(job_id)
            # By the row ids kept from `record_scan`, checked against the fingerprints (a
            # rolled-back insert's ids go to other entries); the others by fingerprint.
            kept: list[tuple[int, str]] = []
            unkept: list[str] = []
            for fingerprint in fingerprints:
                row_id = self._new_ids.pop((folder, fingerprint), None)
                if row_id is None:
                    unkept.append(fingerprint)
                else:
                    kept.append((row_id, fingerprint))
            if kept:
                written = self._db.execute(
                    "UPDATE entries SET job = ?, error = NULL FROM json_each(?) i"
                    " WHERE entries.id = i.value ->> 0 AND +entries.fingerprint = i.value ->> 1"
                    " AND +entries.folder = ?",  # `+`: by id, never through an index on them
                    (number, json.dumps(kept), folder),
                ).rowcount
                if written != len(kept):  # not all theirs: every one by fingerprint
                    unkept = fingerprints
            if unkept:
                self._db.execute(
                    "UPDATE entries SET job = ?, error = NULL WHERE folder = ?"
                    " AND fingerprint IN (SELECT value FROM json_each(?))",
                    (number, folder, json.dumps(unkept)),
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

    def uploads_settled(self, folder: str) -> bool:
        """Whether the folder's uploads leave nothing to ask Encord: no job start a killed run
        left open, no job pending, no submitted entry unmatched, no duplicates to look for."""
        return not (
            self.orphaned_intents(folder)
            or self.pending_jobs(folder)
            or self.unmatched_entries(folder)
            or self.needs_dedupe(folder)
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
        The job stays pending until `finish_job`, so a kill before that settles it again
        (an outcome: `_outcome`).

        The job's rows are read once (through the job index) and written by row id. The
        folder's index, if this connection created the folder, gets the result's items (the
        folder held nothing else): those its entries hold (`items_in_entries`) are not
        written, just the others (an item for no entry, a second one for a title, an entry's
        item it replaces); else the index is no longer current."""
        items = list(items)  # a job's: bounded
        number = self._job_number(job_id)
        folder, folder_uuid = self._db.execute(
            "SELECT folder, folder_uuid FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        rows = self._db.execute(
            f"SELECT id, title, {_first_url()}, item_uuid, {_SINGLE_FILE} FROM entries"
            " WHERE job = ?",
            (number,),
        ).fetchall()
        by_title: dict[str, list[int]] = {}
        for row_id, title, *_ in rows:
            by_title.setdefault(title, []).append(row_id)
        # One item per entry (of two for a title, the later), so which one it holds is known.
        imported = {
            row_id: item_uuid for name, item_uuid in items for row_id in by_title.get(name, ())
        }
        by_url: dict[str, list[int]] = {}
        for row_id, _, first_url, item_uuid, _ in rows:
            if item_uuid is None and row_id not in imported:
                by_url.setdefault(first_url, []).append(row_id)
        failed = [
            (json.dumps(unit), row_id)
            for unit in unit_errors
            for url in unit["object_urls"]
            for row_id in by_url.get(url, ())
        ]
        with self._outcome(len(rows)):
            self._items_changed()
            self._db.execute(
                "UPDATE entries SET item_uuid = i.value ->> 1, error = NULL FROM json_each(?) i"
                " WHERE entries.id = i.value ->> 0",
                (json.dumps(list(imported.items())),),
            )
            self._db.executemany("UPDATE entries SET error = ? WHERE id = ?", failed)
            if folder_uuid in self._indexed_by_results:
                url_of = {title: url for _, title, url, _, single in rows if single}
                if self._holds_items(folder_uuid):
                    # Still in the folder: an item an entry held before this result's.
                    held = set(imported.values())
                    items = [item for item in items if item[1] not in held] + [
                        (title, item_uuid)
                        for row_id, title, _, item_uuid, _ in rows
                        if item_uuid is not None and imported.get(row_id, item_uuid) != item_uuid
                    ]
                self._index_results(folder_uuid, [(*item, url_of.get(item[0])) for item in items])
            else:
                self._db.execute("DELETE FROM folder_index_current WHERE folder = ?", (folder,))
        unaccounted = self._db.execute(
            "SELECT title FROM entries WHERE job = ? AND item_uuid IS NULL AND error IS NULL",
            (number,),
        )
        return [title for (title,) in unaccounted]

    def resolve_item(self, job_id: str, title: str, item_uuid: str | None) -> None:
        """Settle an entry the job's result left out: found in the folder, or failed."""
        error = None if item_uuid else json.dumps({"error": "not in the upload job's result"})
        with self._db:
            self._items_changed()
            self._db.execute(
                "UPDATE entries SET item_uuid = ?, error = ? WHERE job = ? AND title = ?",
                (item_uuid, error, self._job_number(job_id), title),
            )

    def _job_number(self, job_id: str) -> int:
        """The job's number in `entry_jobs`, given one on first use."""
        return self._number("entry_jobs", "job_id", job_id)

    def _storage_folder(self, folder_uuid: str) -> int:
        """The folder's number in `storage_folders`, given one on first use."""
        return self._number("storage_folders", "folder_uuid", folder_uuid)

    def _number(self, table: str, column: str, value: str) -> int:
        """`value`'s number in `table` (keyed by `column`), given one on first use (in the
        caller's transaction, or its own)."""
        self._db.execute(f"INSERT OR IGNORE INTO {table} ({column}) VALUES (?)", (value,))
        (number,) = self._db.execute(
            f"SELECT number FROM {table} WHERE {column} = ?", (value,)
        ).fetchone()
        return int(number)

    def unmatched_entries(self, folder: str) -> int:
        """Entries of the folder's settled-or-settling jobs not yet given an item or error."""
        (count,) = self._db.execute(
            "SELECT count(*) FROM entries WHERE folder = ? AND job IS NOT NULL"
            " AND item_uuid IS NULL AND error IS NULL",
            (folder,),
        ).fetchone()
        return count

    def index_folder(
        self, folder_uuid: str, items: Iterable[tuple[str, str, str | None, float]]
    ) -> int:
        """Replace the index of the folder's items — (uuid, name, URL or None, created at as
        epoch seconds) — written in batches, so a folder of millions stays on disk."""
        with self._db:
            self._db.execute(
                "DELETE FROM folder_index_current WHERE folder_uuid = ?", (folder_uuid,)
            )
            storage_folder = self._storage_folder(folder_uuid)
            self._db.execute("DELETE FROM folder_items WHERE storage_folder = ?", (storage_folder,))
            self._db.execute(
                "UPDATE storage_folders SET items_in_entries = 0 WHERE number = ?",
                (storage_folder,),
            )
        return self._store_items(storage_folder, items)

    def _store_items(
        self, storage_folder: int, items: Iterable[tuple[str, str, str | None, float]]
    ) -> int:
        """Items (uuid, name, URL or None, created at) into the folder's index, committed in
        batches; returns how many."""
        stored = self._folder_url(storage_folder)
        count = 0
        batch: list[tuple[int, str, str, str | None, float]] = []
        for item_uuid, name, url, created_at in items:
            batch.append((storage_folder, item_uuid, name, stored(name, url), created_at))
            if len(batch) >= SCAN_COMMIT_EVERY:
                count += self._index_batch(batch)
        return count + self._index_batch(batch)

    def folder_created(self, folder: str, folder_uuid: str) -> None:
        """This connection's run created the folder: its index is exact (empty), and stays
        so while the run's own jobs add to it (`record_job_result`), whose entries hold the
        items they are given (`items_in_entries`); a listing, a mirror action or a later
        run's job ends that."""
        with self._db:
            storage_folder = self._storage_folder(folder_uuid)
            self._db.execute("DELETE FROM folder_items WHERE storage_folder = ?", (storage_folder,))
            self._db.execute(
                "UPDATE storage_folders SET items_in_entries = 1 WHERE number = ?",
                (storage_folder,),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO folder_index_current (folder, folder_uuid) VALUES (?, ?)",
                (folder, folder_uuid),
            )
        self._indexed_by_results.add(folder_uuid)

    def _index_results(self, folder_uuid: str, items: list[tuple[str, str, str | None]]) -> None:
        """A job's result's items — (name, uuid, the URL of the single-file entry so named or
        None) — into the folder index, as a listing would have them."""
        storage_folder = self._storage_folder(folder_uuid)
        stored = self._folder_url(storage_folder)
        self._db.execute(
            "INSERT OR REPLACE INTO folder_items (storage_folder, item_uuid, name, url, created_at)"
            " SELECT ?, i.value ->> 1, i.value ->> 0, i.value ->> 2, ? FROM json_each(?) i",
            (
                storage_folder,
                time.time(),
                json.dumps([(name, uuid, stored(name, url)) for name, uuid, url in items]),
            ),
        )

    def _holds_items(self, folder_uuid: str) -> bool:
        """Whether entries hold items of the folder's index (`items_in_entries`)."""
        return bool(
            self._db.execute(
                "SELECT 1 FROM storage_folders WHERE folder_uuid = ? AND items_in_entries",
                (folder_uuid,),
            ).fetchone()
        )

    def _held_jobs(self, folder_uuid: str) -> str | None:
        """The parameter of `_HELD_ITEMS` for the folder (its jobs' numbers, a JSON array),
        or None when its index holds all its items."""
        if not self._holds_items(folder_uuid):
            return None
        numbers = self._db.execute(
            "SELECT n.number FROM jobs j JOIN entry_jobs n ON n.job_id = j.job_id"
            " WHERE j.folder_uuid = ?",
            (folder_uuid,),
        )
        return json.dumps([number for (number,) in numbers])

    def _write_out_held_items(self, folder_uuid: str) -> None:
        """The items the folder's entries hold into its index, before what looks items up
        by URL or name, and before a change to the folder by anything but its jobs' results
        (an entry's item would otherwise change the index with it). Once at most, and
        never after a listing, which replaces them all. The flag is cleared last: killed
        before, the items are both held and written, which the readers' unions allow."""
        jobs = self._held_jobs(folder_uuid)
        if jobs is None:
            return
        storage_folder, now = self._storage_folder(folder_uuid), time.time()
        held = self._db.execute(_HELD_ITEMS, (jobs,))
        self._store_items(storage_folder, ((*row, now) for row in held))
        with self._db:
            self._db.execute(
                "UPDATE storage_folders SET items_in_entries = 0 WHERE number = ?",
                (storage_folder,),
            )

    def _folder_url(self, storage_folder: int) -> Callable[[str, str | None], str | None]:
        """How the folder index stores an item's URL, given its name (`_stored_url`). The
        folder's URL base is the first such item's, set only if none is (another connection
        may have set it meanwhile: the one read back under the write lock is the one used),
        in the transaction of the rows that rely on it; once set, it never changes."""
        (base,) = self._db.execute(
            "SELECT url_base FROM storage_folders WHERE number = ?", (storage_folder,)
        ).fetchone()

        def stored(name: str, url: str | None) -> str | None:
            nonlocal base
            if url is None:
                return None
            if base is None and len(url) > len(name) and url.endswith(name):
                self._db.execute(
                    "UPDATE storage_folders SET url_base = ? WHERE number = ? AND url_base IS NULL",
                    (url[: len(url) - len(name)], storage_folder),
                )
                (base,) = self._db.execute(
                    "SELECT url_base FROM storage_folders WHERE number = ?", (storage_folder,)
                ).fetchone()
            return url if base is None else _stored_url(url, base, name)

        return stored

    def folder_index_current(self, folder: str, folder_uuid: str) -> int | None:
        """How many items the folder's index holds, if it matched the entries at the last
        verification and nothing has changed the folder since (else None)."""
        if not self._db.execute(
            "SELECT 1 FROM folder_index_current WHERE folder = ? AND folder_uuid = ?",
            (folder, folder_uuid),
        ).fetchone():
            return None
        stored = f"SELECT item_uuid FROM folder_items WHERE storage_folder = {_STORAGE_FOLDER}"
        jobs = self._held_jobs(folder_uuid)
        (count,) = self._db.execute(
            f"SELECT count(*) FROM ({stored})"
            if jobs is None
            else f"SELECT count(*) FROM ({stored} UNION SELECT item_uuid FROM ({_HELD_ITEMS}))",
            (folder_uuid,) if jobs is None else (folder_uuid, jobs),
        ).fetchone()
        return int(count)

    def record_verified(
        self, folder: str, folder_uuid: str, dataset: str, scan: int, rows: int, items: int
    ) -> None:
        """Verification found the scan's entries exact in the folder (`items` items) and the
        Dataset (`rows` linked): the folder's index is current, and the result stands until
        the entries, their items or links change (`proven_verification`)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO folder_index_current (folder, folder_uuid) VALUES (?, ?)",
                (folder, folder_uuid),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO verified (folder, dataset, folder_uuid, scan, rows, items)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (folder, dataset, folder_uuid, scan, rows, items),
            )

    def proven_verification(
        self, folder: str, folder_uuid: str, dataset: str, scan: int
    ) -> tuple[int, int] | None:
        """(rows, items) of the last exact verification, if it still holds for `scan`: the
        scan lists exactly the entries of the one verified (or is it), and nothing has
        touched the folder since, so its index is current (an upload's intent, a listing and
        a mirror action remove that mark: every change to an entry's item or to a link comes
        with one of them). Recorded again for `scan`, so the next unchanged scan builds on
        it. Else None: compare."""
        row = self._db.execute(
            "SELECT v.scan, v.rows, v.items FROM verified v"
            " JOIN folder_index_current c ON c.folder = v.folder AND c.folder_uuid = v.folder_uuid"
            " WHERE v.folder = ? AND v.dataset = ? AND v.folder_uuid = ?",
            (folder, dataset, folder_uuid),
        ).fetchone()
        if row is None:
            return None
        verified_scan, rows, items = row
        if verified_scan != scan and self._same_as.get(scan, -1) != verified_scan:
            return None
        self.record_verified(folder, folder_uuid, dataset, scan, rows, items)
        return int(rows), int(items)

    def _index_batch(self, batch: list[tuple[int, str, str, str | None, float]]) -> int:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO folder_items (storage_folder, item_uuid, name, url, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                batch,
            )
        count = len(batch)
        batch.clear()
        return count

    def match_job_items(self, job_id: str, folder_uuid: str) -> None:
        """Give the job's entries that its result left without an item the item the folder
        index holds for them: by URL for a single file, by title for a group or series."""
        self._write_out_held_items(folder_uuid)
        with self._db:
            self._items_changed()
            self._db.execute(
                f"UPDATE entries AS e SET item_uuid = {_MATCHING_ITEM}"
                " WHERE e.job = :job AND e.item_uuid IS NULL AND e.error IS NULL",
                {"folder_uuid": folder_uuid, "job": self._job_number(job_id)},
            )

    def duplicates(self, folder: str, folder_uuid: str) -> Iterator[tuple[str, str, list[str]]]:
        """(fingerprint, item to keep, extra items) of each entry marked for de-duplication
        that has more than one item in the folder index. Kept: an item linked to a Dataset,
        else the one the entry already has, else the oldest."""
        self._write_out_held_items(folder_uuid)
        rows = self._db.execute(
            f"SELECT d.fingerprint, d.since, e.item_uuid, e.title, {_first_url('e.')},"
            f" e.{_SINGLE_FILE}"
            " FROM dedupe_pending d JOIN entries e ON e.folder = d.folder"
            " AND e.fingerprint = d.fingerprint WHERE d.folder = ?",
            (folder,),
        ).fetchall()
        for fingerprint, since, current, title, first_url, single in rows:
            if single:
                found = _items_at_url(_NAMED_STORAGE_FOLDER, ":url")
            else:  # a group's earlier versions share its title: only items since the start
                found = (
                    "SELECT item_uuid, created_at FROM folder_items"
                    f" WHERE storage_folder = {_NAMED_STORAGE_FOLDER}"
                    " AND url IS NULL AND name = :title AND created_at >= :since"
                )
            items = self._db.execute(
                "SELECT f.item_uuid, EXISTS (SELECT 1 FROM links WHERE links.item_uuid ="
                f" f.item_uuid) FROM ({found}) f ORDER BY f.created_at, f.item_uuid",
                {
                    "folder_uuid": folder_uuid,
                    "url": first_url,
                    "title": title,
                    "since": since - GROUP_CLOCK_SKEW_SECONDS,
                },
            ).fetchall()
            if len(items) < 2:
                continue
            linked = [item for item, is_linked in items if is_linked]
            uuids = [item for item, _ in items]
            keep = linked[0] if linked else current if current in uuids else uuids[0]
            yield fingerprint, keep, [item for item in uuids if item != keep and item not in linked]

    def deduplicated(self, folder: str, fingerprint: str, keep: str) -> None:
        with self._db:
            self._items_changed()
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
        """The job settled (an outcome: `_outcome`)."""
        with self._outcome(1):
            if status != "DONE":
                # The job failed or was cancelled as a whole: what it did not import counts
                # as never submitted, so a rerun (after the cause is fixed) submits it again.
                self._db.execute(
                    "UPDATE entries SET job = NULL WHERE job = ?"
                    " AND item_uuid IS NULL AND error IS NULL",
                    (self._job_number(job_id),),
                )
            self._db.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (status, job_id))

    # -- failed units ------------------------------------------------------------------

    def failed_units(self, folder: str, scan: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(title, error record) of each failed entry the scan saw."""
        members, scanned = self._members(folder, scan)
        rows = self._db.execute(
            f"SELECT title, {_first_url()}, (SELECT job_id FROM entry_jobs WHERE number = job),"
            " error"
            f" FROM entries WHERE {members} AND error IS NOT NULL ORDER BY title",
            scanned,
        )
        for title, first_url, job_id, error in rows:
            yield title, {"url": first_url, "job_id": job_id, **json.loads(error)}

    def failed_entries(self, folder: str, scan: int, page_size: int = 1000) -> Iterator[Entry]:
        """The scan's failed entries, read a page at a time: the caller may resubmit (and so
        update) them while iterating, which an open SQLite cursor would not survive."""
        members, scanned = self._members(folder, scan)
        after = ""
        while rows := self._db.execute(
            f"SELECT title, kind, {_first_url()}, rebuild FROM entries"
            f" WHERE {members} AND error IS NOT NULL AND title > ? ORDER BY title LIMIT ?",
            (*scanned, after, page_size),
        ).fetchall():
            for row in rows:
                yield _rebuild(*row)
            after = rows[-1][0]

    # -- linking -----------------------------------------------------------------------

    def unlinked_items(
        self, folder: str, scan: int, dataset: str, batch_size: int
    ) -> Iterator[list[str]]:
        """The scan's uploaded items not linked to `dataset` yet, in batches. Read a page at
        a time in the order the entries were first recorded, so the caller may record links
        between batches and each page starts where the last one ended (no rescanning of
        what is already linked).

        None, without reading any, when the scan lists exactly the entries of the latest
        finished scan, all of whose items were linked, and no entry was given another item
        and no link removed since (`links_checked`, `item_changes`)."""
        if self._all_linked(folder, scan, dataset):
            self._links_checked(folder, scan, dataset, self._item_changes())
            return
        changes, recorded = self._item_changes(), self._links_recorded
        yielded = 0
        members, scanned = self._members(folder, scan)
        after = 0
        while rows := self._db.execute(
            f"SELECT id, item_uuid FROM entries WHERE {members} AND id > ?"
            " AND item_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links"
            f" WHERE links.dataset = {_DATASET_NUMBER} AND links.item_uuid = entries.item_uuid)"
            " ORDER BY id LIMIT ?",
            (*scanned, after, dataset, batch_size),
        ).fetchall():
            yield [item_uuid for _, item_uuid in rows]
            yielded += len(rows)
            after = rows[-1][0]
        if scan not in self._partial and self._links_recorded - recorded >= yielded:
            self._links_checked(folder, scan, dataset, changes)  # every batch was linked

    def _all_linked(self, folder: str, scan: int, dataset: str | None) -> bool:
        """Whether every imported entry of the scan is known linked to `dataset`."""
        if dataset is None or scan in self._partial:
            return False
        row = self._db.execute(
            "SELECT scan, item_changes FROM links_checked WHERE folder = ? AND dataset = ?",
            (folder, dataset),
        ).fetchone()
        if row is None or row[1] != self._item_changes():
            return False
        # Checked for this scan, or for the one it lists exactly the entries of.
        return row[0] == scan or (scan in self._same_as and row[0] == self._same_as[scan])

    def _links_checked(self, folder: str, scan: int, dataset: str, changes: int) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO links_checked (folder, dataset, scan, item_changes)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (folder, dataset) DO UPDATE"
                " SET scan = excluded.scan, item_changes = excluded.item_changes",
                (folder, dataset, scan, changes),
            )

    def _item_changes(self) -> int:
        row = self._db.execute("SELECT count FROM item_changes").fetchone()
        return row[0] if row else 0

    def _items_changed(self) -> None:
        """Count a change that gives entries other items or removes links, in the caller's
        transaction: what `links_checked` proved no longer holds."""
        self._db.execute(
            "INSERT INTO item_changes (id, count) VALUES (1, 1)"
            " ON CONFLICT (id) DO UPDATE SET count = count + 1"
        )

    def record_links(self, dataset: str, item_uuids: Iterable[str]) -> None:
        """Items linked to `dataset` (an outcome: `_outcome`)."""
        item_uuids = list(item_uuids)
        with self._outcome(len(item_uuids)):
            self._db.execute("INSERT OR IGNORE INTO datasets (dataset) VALUES (?)", (dataset,))
            written = self._db.execute(
                "INSERT OR IGNORE INTO links (dataset, item_uuid)"
                f" SELECT {_DATASET_NUMBER}, value FROM json_each(?)",
                (dataset, json.dumps(item_uuids)),
            ).rowcount
        self._links_recorded += written

    @contextmanager
    def _outcome(self, rows: int) -> Iterator[None]:
        """The statements inside as one change recording an outcome of Encord's (`rows`
        rows), committed with the next `OUTCOME_COMMIT_EVERY` rows, the next other change
        (each commits what is open: an intent is never written before what came earlier)
        or `close`, whichever comes first. On an error, what is open is rolled back: the
        rerun redoes it."""
        try:
            yield
        except BaseException:
            self._db.rollback()
            self._uncommitted = 0
            raise
        self._uncommitted += rows
        if self._uncommitted >= OUTCOME_COMMIT_EVERY:
            self._db.commit()
            self._uncommitted = 0

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
        members, scanned = self._members(folder, scan)
        ours = self._db.execute(
            f"SELECT title, item_uuid FROM entries WHERE {members} ORDER BY title", scanned
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

    def linked_rows(
        self, folder: str, dataset: str, page_size: int = 10_000
    ) -> Iterator[tuple[str, str]]:
        """(title, item uuid) of every item of the folder's entries linked to `dataset`, as
        the link records have it, read a page at a time."""
        after = ""
        while rows := self._db.execute(
            "SELECT l.item_uuid, min(e.title) FROM links l JOIN entries e"
            " ON e.item_uuid = l.item_uuid AND e.folder = ?"
            f" WHERE l.dataset = {_DATASET_NUMBER} AND l.item_uuid > ? GROUP BY l.item_uuid"
            " ORDER BY l.item_uuid LIMIT ?",
            (folder, dataset, after, page_size),
        ).fetchall():
            for item_uuid, title in rows:
                yield title, item_uuid
            after = rows[-1][0]

    def file_links(self, folder_uuid: str) -> Iterator[str]:
        """Each indexed item's URL (or, for a group or series, its name), by name."""
        self._write_out_held_items(folder_uuid)
        for name, url in self._db.execute(
            f"SELECT f.name, {_ITEM_URL} FROM folder_items f"
            f" WHERE f.storage_folder = {_STORAGE_FOLDER} ORDER BY f.name",
            (folder_uuid,),
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
        members, scanned = self._members(folder, scan)
        self._db.execute(
            "INSERT OR IGNORE INTO planned_items SELECT item_uuid FROM entries"
            f" WHERE {members} AND item_uuid IS NOT NULL",
            scanned,
        )
        self._db.execute(
            "INSERT OR IGNORE INTO planned_units SELECT CASE WHEN"
            f" {_SINGLE_FILE} THEN 'u:' || {_first_url()} ELSE 't:' || title END"
            f" FROM entries WHERE {members}",
            scanned,
        )
        jobs = self._held_jobs(folder_uuid)
        # An entry's item is in the folder if its index has it, or if the entry holds it
        # (given it by one of the folder's jobs: while entries hold items, nothing else
        # gives an entry an item, see `_write_out_held_items`).
        held = (
            ""
            if jobs is None
            else " AND NOT (e.item_uuid IS NOT NULL AND e.job IN (SELECT value FROM json_each(?)))"
        )
        yield from self._db.execute(
            f"SELECT 'not in folder', e.title FROM entries e WHERE {members}{held}"
            " AND NOT EXISTS (SELECT 1 FROM folder_items f"
            f" WHERE f.storage_folder = {_STORAGE_FOLDER}"
            " AND f.item_uuid = e.item_uuid) ORDER BY e.title",
            (*scanned, *([] if jobs is None else [jobs]), folder_uuid),
        )
        indexed = (
            f"SELECT f.item_uuid, f.name, {_ITEM_URL} AS url FROM folder_items f"
            f" WHERE f.storage_folder = {_STORAGE_FOLDER}"
        )
        unplanned = " AND item_uuid NOT IN planned_items"  # before the union sorts them
        yield from self._db.execute(
            "SELECT CASE WHEN (CASE WHEN i.url IS NULL THEN 't:' || i.name ELSE 'u:' || i.url"
            " END) IN planned_units THEN 'duplicate' ELSE 'unplanned' END, i.name FROM"
            f" ({indexed if jobs is None else f'{indexed} UNION {_HELD_ITEMS}{unplanned}'}) i"
            " WHERE i.item_uuid NOT IN planned_items"
            # Left in the folder on purpose: unlinked by `deletions: unlink`.
            " AND i.item_uuid NOT IN (SELECT item_uuid FROM mirror_items"
            " WHERE folder = ? AND status = 'unlinked' UNION ALL SELECT item_uuid FROM entries"
            " WHERE folder = ? AND mirrored != 0 AND mirrored = 2) ORDER BY i.name",
            (folder_uuid, *([] if jobs is None else [jobs]), folder, folder),
        )

    # -- counts ------------------------------------------------------------------------

    def counts(self, folder: str, scan: int, dataset: str | None) -> dict[str, int]:
        """How many of the scan's entries are in each state."""
        members, scanned = self._members(folder, scan)
        # EXISTS, one lookup in the links' index per entry: `IN (SELECT …)` would first copy
        # every link of the Dataset into a temporary table. None when all are known linked.
        linked_count, parameters = (
            ("count(item_uuid)", scanned)
            if self._all_linked(folder, scan, dataset)
            else (
                f"count(EXISTS (SELECT 1 FROM links WHERE links.dataset = {_DATASET_NUMBER}"
                " AND links.item_uuid = entries.item_uuid) OR NULL)",
                (dataset, *scanned),
            )
        )
        (total, submitted, uploaded, failed, linked) = self._db.execute(
            f"SELECT count(*), count(job), count(item_uuid), count(error), {linked_count}"
            f" FROM entries WHERE {members}",
            parameters,
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
        scanned = [row[0] for row in self._db.execute("SELECT DISTINCT folder FROM scans")]
        recovered = [row[0] for row in self._db.execute("SELECT DISTINCT folder FROM mirror_items")]
        return sorted({*recovered, *(folder for folder in scanned if self.has_mirrored(folder))})

    def has_mirrored(self, folder: str) -> bool:
        return bool(
            self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM entries WHERE folder = ? AND mirrored != 0)"
                " OR EXISTS (SELECT 1 FROM mirror_items WHERE folder = ?)",
                (folder, folder),
            ).fetchone()[0]
        )

    def mirrored_count(self, folder: str) -> int:
        """Items a previous sync left in the Dataset."""
        return self._db.execute(
            "SELECT (SELECT count(*) FROM entries WHERE folder = ? AND mirrored != 0"
            " AND mirrored = 1) + (SELECT count(*) FROM mirror_items WHERE folder = ?"
            " AND status = ?)",
            (folder, folder, PRESENT),
        ).fetchone()[0]

    def prior_by_title(self, folder: str, title: str) -> Prior | None:
        """The item of that title, a present one first."""
        row = self._db.execute(
            f"{_ENTRY_PRIOR} WHERE folder = ? AND title = ? AND mirrored != 0"
            " ORDER BY mirrored LIMIT 1",
            (folder, title),
        ).fetchone()
        if row is not None and row[2] == 1:
            return _entry_prior(row)[0]
        recovered = self._db.execute(
            f"{_RECOVERED_PRIOR} WHERE folder = ? AND title = ?"
            " ORDER BY status = 'present' DESC LIMIT 1",
            (folder, title),
        ).fetchone()
        if recovered is not None and (row is None or recovered[-1] == PRESENT):
            return _recovered_prior(recovered)
        return _entry_prior(row)[0] if row is not None else None

    def signature_elsewhere(self, folder: str, signature: str | None, title: str) -> bool:
        if signature is None:
            return False
        key = _signature_key(signature)
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM entries WHERE signature = ? AND mirrored != 0"
            " AND +folder = ? AND title != ?) OR EXISTS (SELECT 1 FROM mirror_items"
            " WHERE folder = ? AND signature = ? AND title != ?)",
            (key, folder, title, folder, key, title),
        ).fetchone()
        return bool(row[0])

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
                f"SELECT title, kind, {_first_url()}, rebuild FROM entries WHERE folder = ?"
                " AND fingerprint = ? AND job IS NULL AND item_uuid IS NULL AND error IS NULL",
                (folder, fingerprint),
            ).fetchone()
            if row:
                yield _rebuild(*row)

    def gone(
        self,
        folder: str,
        scan: int | None,
        signatures: Iterable[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Prior]:
        """Items whose title the scan does not have, a page at a time in title order (the
        caller may act on them, and so change them, between pages); only those of the given
        signatures if any are given.

        None, without reading any, when the folder's latest finished scan had none and this
        scan lists every entry that one did: since then the items gained only titles of
        that scan (`record_mirrored`, `finish_repoint`) or lost some (removals); what could
        add another (`seed_mirrored`, `leave_mirror`) forgets the check (`gone_checked`)."""
        if scan is not None and scan not in self._partial:
            checked = self._db.execute(
                "SELECT scan FROM gone_checked WHERE folder = ?", (folder,)
            ).fetchone()
            reference = self._lists_all_of.get(scan)
            if checked is not None and reference is not None and checked[0] == reference:
                self._gone_checked(folder, scan)
                return
        found = 0
        for prior in self._gone(folder, scan, signatures, page_size):
            found += 1
            yield prior
        if scan is not None and scan not in self._partial and signatures is None and not found:
            self._gone_checked(folder, scan)

    def _gone_checked(self, folder: str, scan: int | None) -> None:
        """`gone` found no item of the scan's (None: forget what it found)."""
        with self._db:
            if scan is None:
                self._db.execute("DELETE FROM gone_checked WHERE folder = ?", (folder,))
            else:
                self._db.execute(
                    "INSERT INTO gone_checked (folder, scan) VALUES (?, ?)"
                    " ON CONFLICT (folder) DO UPDATE SET scan = excluded.scan",
                    (folder, scan),
                )

    def _gone(
        self, folder: str, scan: int | None, signatures: Iterable[str] | None, page_size: int
    ) -> Iterator[Prior]:
        if scan is not None:
            self._list_scan_titles(folder, scan)
        titles = "temp.preview_seen" if scan is None else "temp.scan_titles"
        unseen = f"NOT EXISTS (SELECT 1 FROM {titles} s WHERE s.title = p.title)"
        if signatures is not None:
            self._db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS wanted_signatures (signature INTEGER)"
            )
            self._db.execute("DELETE FROM wanted_signatures")
            self._db.executemany(
                "INSERT INTO wanted_signatures VALUES (?)",
                [(_signature_key(sig),) for sig in signatures],
            )
            unseen += " AND p.signature IN (SELECT signature FROM temp.wanted_signatures)"
        entries = self._paged(
            f"{_ENTRY_PRIOR} p WHERE folder = :folder AND mirrored != 0 AND {unseen}"
            " AND (title, mirrored, id) > (:title, :mirrored, :id)"
            " ORDER BY title, mirrored, id LIMIT :limit",
            {"folder": folder, "title": "", "mirrored": 0, "id": 0, "limit": page_size},
            lambda row: {"title": row[1], "mirrored": row[2], "id": row[-1]},
        )
        recovered = self._paged(
            f"{_RECOVERED_PRIOR} p WHERE folder = :folder AND {unseen}"
            " AND (title, item_uuid) > (:title, :uuid) ORDER BY title, item_uuid LIMIT :limit",
            {"folder": folder, "title": "", "uuid": "", "limit": page_size},
            lambda row: {"title": row[1], "uuid": row[0]},
        )
        yield from heapq.merge(
            (_entry_prior(row)[0] for row in entries),
            (_recovered_prior(row) for row in recovered),
            key=lambda prior: prior.title,
        )

    def _paged(
        self, query: str, parameters: dict[str, Any], after: Callable[[tuple], dict[str, Any]]
    ) -> Iterator[tuple]:
        """The rows of `query`, a page per execution: `after` gives the parameters that
        start the next page after a row."""
        while rows := self._db.execute(query, parameters).fetchall():
            yield from rows
            parameters = {**parameters, **after(rows[-1])}

    def _list_scan_titles(self, folder: str, scan: int) -> None:
        """The scan's titles into `temp.scan_titles`, once per scan: only the provenance
        has an index by title (one over every entry would cost each recorded a write), and
        `gone` looks up every item's title."""
        if self._titles_of == (folder, scan):
            return
        members, scanned = self._members(folder, scan)
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS scan_titles (title TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        self._db.execute("DELETE FROM temp.scan_titles")
        self._db.execute(
            f"INSERT OR IGNORE INTO temp.scan_titles SELECT title FROM entries WHERE {members}",
            scanned,
        )
        self._titles_of = (folder, scan)

    def scanned_count(self, folder: str, scan: int | None) -> int:
        if scan is None:
            return self._db.execute("SELECT count(*) FROM temp.preview_seen").fetchone()[0]
        members, scanned = self._members(folder, scan)
        return self._db.execute(
            f"SELECT count(*) FROM entries WHERE {members}", scanned
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
        # Per action: the flagged folders first (after the first action, usually none).
        flagged = self._db.execute("SELECT folder_uuid FROM storage_folders WHERE items_in_entries")
        for (folder_uuid,) in flagged.fetchall():
            if self._db.execute(
                "SELECT 1 FROM jobs WHERE folder = ? AND folder_uuid = ?", (folder, folder_uuid)
            ).fetchone():
                self._write_out_held_items(folder_uuid)
        with self._db:
            self._db.execute("DELETE FROM folder_index_current WHERE folder = ?", (folder,))
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
            self._items_changed()
            self._db.execute(
                "UPDATE entries SET item_uuid = NULL WHERE folder = ? AND item_uuid = ?",
                (folder, item_uuid),
            )
            (row_id,) = self._db.execute(
                "UPDATE entries SET item_uuid = ?, error = NULL WHERE folder = ? AND fingerprint = ?"
                " RETURNING id",
                (item_uuid, folder, entry.fingerprint),
            ).fetchone()
            self._upsert_mirrored(folder, [(row_id, item_uuid)])
            self._done(folder, item_uuid, "repoint")

    def finish_removal(
        self, folder: str, dataset: str, item_uuids: list[str], action: str, deleted: bool
    ) -> None:
        """Items unlinked from `dataset` (and deleted from the folder if `deleted`)."""
        with self._db:
            self._items_changed()
            self._db.executemany(
                f"DELETE FROM links WHERE dataset = {_DATASET_NUMBER} AND item_uuid = ?",
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
                    "UPDATE entries SET item_uuid = NULL, job = NULL, error = NULL"
                    " WHERE folder = ? AND item_uuid = ?",
                    pairs,
                )
            else:
                self._db.executemany(
                    "UPDATE mirror_items SET status = ? WHERE folder = ? AND item_uuid = ?",
                    [(UNLINKED, folder, item_uuid) for item_uuid in item_uuids],
                )
                # Its entry, should its object come back, makes it present again
                # (`record_mirrored`).
                self._db.executemany(
                    "UPDATE entries SET mirrored = 2 WHERE item_uuid = ? AND mirrored != 0"
                    " AND +folder = ?",
                    [(item_uuid, folder) for item_uuid in item_uuids],
                )
            for item_uuid in item_uuids:
                self._done(folder, item_uuid, action)

    def record_mirrored(self, folder: str, scan: int, page_size: int = 10_000) -> None:
        """Each of the scan's entries in Encord as an item, as that item's present
        provenance, where it is not yet: read through `entries_to_mirror`, which holds just
        those (none on an unchanged sync), a page per query, committed every
        `SCAN_COMMIT_EVERY` rows (the provenance's index pages are written in random order:
        a large transaction writes each of them once)."""
        members, scanned = self._members(folder, scan)
        # Items of the scan's titles only: `gone` still finds none if it found none before.
        checked = self._db.execute(
            "SELECT scan FROM gone_checked WHERE folder = ?", (folder,)
        ).fetchone()
        none_gone = scan not in self._partial and (
            not self.has_mirrored(folder) or (checked is not None and checked[0] == scan)
        )
        recovered = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM mirror_items WHERE folder = ?)", (folder,)
        ).fetchone()[0]
        after = written = 0
        while rows := self._db.execute(
            "SELECT e.id, e.item_uuid FROM entries e INDEXED BY entries_to_mirror"
            f" WHERE e.item_uuid IS NOT NULL AND e.mirrored != 1 AND e.id > ? AND {members}"
            " ORDER BY e.id LIMIT ?",
            (after, *scanned, page_size),
        ).fetchall():
            self._upsert_mirrored(folder, rows, recovered)
            after, written = rows[-1][0], written + len(rows)
            if written >= SCAN_COMMIT_EVERY:
                self._db.commit()
                written = 0
        self._db.commit()
        if none_gone:
            self._gone_checked(folder, scan)

    def seed_mirrored(self, folder: str, items: Iterable[tuple[str, str, tuple[str, ...]]]) -> None:
        """Provenance recovered from a Folder listing (item uuid, name, URLs), for a state
        that lost it: no ETags, so these items can be found gone, never changed or moved.
        An item an entry stands for keeps that provenance."""
        self._gone_checked(folder, None)
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO mirror_items (folder, item_uuid, title, urls, etags)"
                " SELECT ?1, ?2, ?3, ?4, '[]' WHERE NOT EXISTS (SELECT 1 FROM entries"
                " WHERE item_uuid = ?2 AND mirrored != 0 AND +folder = ?1)",
                [(folder, uuid, title, json.dumps(urls)) for uuid, title, urls in items],
            )

    def _upsert_mirrored(
        self, folder: str, imported: list[tuple[int, str]], recovered: bool = True
    ) -> None:
        """Each (entry row id, item uuid) as its item's present provenance, in the caller's
        transaction: the entry is marked `mirrored`, and is the item's only provenance (any
        other entry it stood for, or its recovered row, no longer; `recovered`: the folder
        may have such rows)."""
        ids = json.dumps([row_id for row_id, _ in imported])
        items = json.dumps([item for _, item in imported])
        self._db.execute(
            "UPDATE entries SET mirrored = 0 WHERE item_uuid IN (SELECT value FROM json_each(?))"
            " AND item_uuid IS NOT NULL AND mirrored != 0 AND +folder = ?"
            " AND id NOT IN (SELECT value FROM json_each(?))",
            (items, folder, ids),
        )
        if recovered:
            self._db.execute(
                "DELETE FROM mirror_items WHERE folder = ?"
                " AND item_uuid IN (SELECT value FROM json_each(?))",
                (folder, items),
            )
        self._db.execute(
            "UPDATE entries SET mirrored = 1 WHERE id IN (SELECT value FROM json_each(?))", (ids,)
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

    def leave_mirror(self, folder: str, fingerprints: Iterable[str]) -> None:
        """Take entries out of the latest finished scan, as a full listing without them
        would (`ingest watch`: objects a batch found removed), before Encord is changed."""
        mirror = self.latest_scan(folder)
        if mirror is None:
            return
        self._gone_checked(folder, None)
        with self._db:
            self._db.executemany(
                "UPDATE entries SET gone_at = ? WHERE folder = ? AND fingerprint = ?"
                " AND gone_at IS NULL",
                [(mirror, folder, fingerprint) for fingerprint in fingerprints],
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
        conditions = [("title = ?", (title,)) for title in titles] + [
            ("title >= ? AND title < ?", (prefix, prefix + "\U0010ffff")) for prefix in under
        ]
        found: dict[str, tuple[Prior, Entry | None]] = {}
        for condition, parameters in conditions:
            for row in self._db.execute(
                f"{_ENTRY_PRIOR} WHERE folder = ? AND mirrored != 0 AND {condition}",
                (folder, *parameters),
            ):
                prior, entry = _entry_prior(row)
                if wanted.intersection(entry.keys):
                    found[prior.item_uuid] = (prior, entry)
            for row in self._db.execute(
                f"{_RECOVERED_PRIOR} WHERE folder = ? AND {condition}", (folder, *parameters)
            ):
                prior = _recovered_prior(row)
                if prior.title in wanted:  # no keys recovered: its title must be one
                    found[prior.item_uuid] = (prior, None)
        return sorted(found.values(), key=lambda pair: (pair[0].title, pair[0].item_uuid))


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

    def take_if_next(self, fingerprints: list[str]) -> list[tuple[int, str, int]] | None:
        """The next earlier entries (id, fingerprint, never submitted), consumed, if their
        fingerprints are exactly `fingerprints`; else None, and nothing moves (`next_if`,
        for a whole batch at once)."""
        rows, count = self._rows, len(fingerprints)
        while len(rows) < count and self._fill():
            pass
        if len(rows) < count:
            return None
        head = list(islice(rows, count))
        if [row[1] for row in head] != fingerprints:
            return None
        for _ in range(count):
            rows.popleft()
        return head

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
            "SELECT id, fingerprint, job IS NULL AND item_uuid IS NULL AND error IS NULL"
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

    def add_ascending(self, row_ids: list[int]) -> None:
        """Add strictly ascending ids (rows read in id order): when they have no gap, as
        whole bytes (an unchanged rerun's batches, one Python step per row otherwise)."""
        if not row_ids:
            return
        first, last = row_ids[0], row_ids[-1]
        low, high = (first + 7) >> 3, (last + 1) >> 3  # the bytes all of whose bits are in
        if last - first + 1 != len(row_ids) or low >= high:
            for row_id in row_ids:
                self.add(row_id)
            return
        for row_id in (*range(first, low << 3), *range(high << 3, last + 1)):
            self.add(row_id)
        bits = self._bits
        if high > len(bits):
            bits.extend(bytes(high - len(bits) + len(bits) // 2))
        self.count += 8 * (high - low) - int.from_bytes(bits[low:high], "little").bit_count()
        bits[low:high] = b"\xff" * (high - low)

    def __contains__(self, row_id: int) -> bool:
        byte = row_id >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (row_id & 7)))


_KIND_NUMBER = {kind: number for number, kind in enumerate(KINDS)}


def _compact(entry: Entry) -> bytes:
    """What rebuilds the entry with its title, kind and first URL (stored beside it): the
    keys only when they are not the title alone, the URLs only when they are not the first
    one's base followed by each key, as they usually are, the sizes only when known; an
    ETag that is an MD5 in lowercase hex as its 16 bytes."""
    first_url, keys = entry.urls[0], entry.keys
    base = first_url[: len(first_url) - len(keys[0])] if first_url.endswith(keys[0]) else None
    derived = base is not None and all(
        url == base + key for url, key in zip(entry.urls, keys, strict=True)
    )
    fields = (
        None if keys == (entry.title,) else keys,
        tuple(map(_packed_etag, entry.etags)),
        None if derived else entry.urls,
        entry.client_metadata,
        entry.create_video,
        entry.sizes or None,
    )
    return marshal.dumps(fields, 4)


def _rebuild(title: str, kind: int, first_url: str, rebuild: bytes) -> Entry:
    keys, etags, urls, client_metadata, create_video, sizes = marshal.loads(rebuild)
    if keys is None:
        keys = (title,)
    if urls is None:
        base = first_url[: len(first_url) - len(keys[0])]
        urls = tuple(base + key for key in keys)
    etags = tuple(etag if isinstance(etag, str) else etag.hex() for etag in etags)
    return Entry(KINDS[kind], title, keys, urls, etags, client_metadata, create_video, sizes or ())


def _packed_etag(etag: str) -> str | bytes:
    """The ETag's 16 bytes if it is an MD5 in lowercase hex (`hex()` gives it back), else
    the ETag."""
    if len(etag) != 32:
        return etag
    try:
        digest = bytes.fromhex(etag)
    except ValueError:
        return etag
    return digest if digest.hex() == etag else etag


# Mirroring: what makes a `Prior` of an entry's item (`_entry_prior`), or of a recovered one
# (`_recovered_prior`).
_ENTRY_PRIOR = f"SELECT item_uuid, title, mirrored, kind, {_first_url()}, rebuild, id FROM entries"
_RECOVERED_PRIOR = "SELECT item_uuid, title, urls, etags, signature_text, status FROM mirror_items"


def _entry_prior(row: tuple) -> tuple[Prior, Entry]:
    item_uuid, title, mirrored, kind, first_url, rebuild, _ = row
    entry = _rebuild(title, kind, first_url, rebuild)
    status = PRESENT if mirrored == 1 else UNLINKED
    return Prior(item_uuid, title, entry.urls, entry.etags, entry_signature(entry), status), entry


def _recovered_prior(row: tuple) -> Prior:
    item_uuid, title, urls, etags, signature, status = row
    return Prior(
        item_uuid, title, tuple(json.loads(urls)), tuple(json.loads(etags)), signature, status
    )


def _content_key(etags: Iterable[str], sizes: Iterable[int]) -> int | None:
    """What `signature` columns hold of the content signature of these ETags and sizes
    (`ingest.mirror.diff.signature`, None where it is None): 8 bytes of a digest, computed
    without its JSON (every entry recorded has one)."""
    etags, sizes = tuple(etags), tuple(sizes)
    if not etags or len(sizes) != len(etags):
        return None
    digest = hashlib.blake2b(repr((etags, sizes)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _signature_key(signature: str | None) -> int | None:
    """`_content_key` of a signature as `ingest.mirror.diff.signature` gives it."""
    if signature is None:
        return None
    etags, sizes = json.loads(signature)
    return _content_key(etags, sizes)


def _entry_signature_key(title: str, kind: int, first_url: str, rebuild: bytes) -> int | None:
    """`_content_key` of a stored entry (migrating layout 5)."""
    entry = _rebuild(title, kind, first_url, rebuild)
    return _content_key(entry.etags, entry.sizes)
