"""The sandbox's state: JSON documents in SQLite, in memory unless a file is given.

One table holds every kind of record (integration, folder, item, job, unit, dataset, data
row, setting). `parent`, `key` and `sort` are indexed so that the listings the API pages
through (items of a folder by name, rows of a dataset, items with a given URL) never scan
unrelated records; the row id gives a stable insertion order and breaks ties.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT,
    key TEXT,
    sort TEXT,
    body TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX IF NOT EXISTS documents_by_parent ON documents (kind, parent, seq);
CREATE INDEX IF NOT EXISTS documents_by_key ON documents (kind, key, parent);
-- What paged listings order by (an expression index: the scan never sorts a whole folder).
CREATE INDEX IF NOT EXISTS documents_by_sort_key ON documents (kind, parent, COALESCE(sort, ''), seq);
"""

Document = dict[str, Any]
Cursor = tuple[str, int]  # (sort value, seq): where a scan stopped


class Store:
    def __init__(self, path: str | None = None):
        self._connection = sqlite3.connect(path or ":memory:", check_same_thread=False)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() in the thread holding the lock
        if path:
            self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)
        self._connection.commit()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them land, or none. Nested groups join the outermost one."""
        with self._lock:
            self._depth += 1
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self._connection.rollback()
                raise
            else:
                if self._depth == 1:
                    self._connection.commit()
            finally:
                self._depth -= 1

    def put(
        self,
        kind: str,
        id: str,
        body: Document,
        *,
        parent: str | None = None,
        key: str | None = None,
        sort: str | None = None,
    ) -> None:
        with self.transaction():
            self._connection.execute(
                "INSERT INTO documents (kind, id, parent, key, sort, body) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET parent = excluded.parent, "
                "key = excluded.key, sort = excluded.sort, body = excluded.body",
                (kind, id, parent, key, sort, json.dumps(body)),
            )

    def get(self, kind: str, id: str) -> Document | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT body FROM documents WHERE kind = ? AND id = ?", (kind, id)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def scan(
        self,
        kind: str,
        *,
        parent: str | None = None,
        by_sort: bool = False,
        descending: bool = False,
        after: Cursor | None = None,
        batch: int = 500,
    ) -> Iterator[tuple[Cursor, Document]]:
        """Documents in `sort` or insertion order, each with the cursor to resume after it."""
        direction, compare = ("DESC", "<") if descending else ("ASC", ">")
        order_key = "COALESCE(sort, '')" if by_sort else "''"
        cursor = after
        while True:
            sql = f"SELECT {order_key}, seq, body FROM documents WHERE kind = ?"
            args: list[Any] = [kind]
            if parent is not None:
                sql += " AND parent = ?"
                args.append(parent)
            if cursor is not None:
                sql += f" AND ({order_key}, seq) {compare} (?, ?)"
                args.extend(cursor)
            sql += f" ORDER BY {order_key} {direction}, seq {direction} LIMIT ?"
            args.append(batch)
            with self._lock:
                rows = self._connection.execute(sql, args).fetchall()
            for sort, seq, body in rows:
                cursor = (sort, seq)
                yield cursor, json.loads(body)
            if len(rows) < batch:
                return

    def delete(self, kind: str, id: str) -> None:
        with self.transaction():
            self._connection.execute("DELETE FROM documents WHERE kind = ? AND id = ?", (kind, id))

    def get_many(self, kind: str, ids: list[str]) -> dict[str, Document]:
        """Documents by id, fetched in batches (missing ids are absent from the result)."""
        found: dict[str, Document] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ", ".join("?" * len(batch))
            with self._lock:
                rows = self._connection.execute(
                    f"SELECT id, body FROM documents WHERE kind = ? AND id IN ({marks})",
                    [kind, *batch],
                ).fetchall()
            found.update((id, json.loads(body)) for id, body in rows)
        return found

    def count(self, kind: str, *, key: str, parent: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM documents WHERE kind = ? AND key = ?"
        args = [kind, key]
        if parent is not None:
            sql += " AND parent = ?"
            args.append(parent)
        with self._lock:
            return int(self._connection.execute(sql, args).fetchone()[0])

    def all(self, kind: str, *, parent: str | None = None) -> list[Document]:
        return [body for _, body in self.scan(kind, parent=parent)]

    def find(self, kind: str, *, key: str, parent: str | None = None) -> list[Document]:
        sql = "SELECT body FROM documents WHERE kind = ? AND key = ?"
        args = [kind, key]
        if parent is not None:
            sql += " AND parent = ?"
            args.append(parent)
        with self._lock:
            rows = self._connection.execute(sql + " ORDER BY seq", args).fetchall()
        return [json.loads(body) for (body,) in rows]

    def close(self) -> None:
        with self._lock:
            self._connection.close()
