"""The least a first run's state could cost per entry in SQLite, next to `bench.state`.

Whatever the layout, a first run leaves each entry findable by its fingerprint (a rerun's
look-ups), by its item (verification, mirroring) and linked to the Dataset by that item:
three B-tree writes on random keys (hashes, Encord's uuids). This measures just those, on
`bench.state`'s entries, with the state's connection (`ingest.state.connect`) and commit
sizes, and nothing else: each row inserted with its fingerprint index alone, then given its
item under an item index, then its link. Two encodings of the keys: `text` as the state
stores them (hex fingerprint, the uuid's 36 characters; statements over JSON arrays, as
the state's) and `binary` (16 bytes each; `executemany`, JSON carries no bytes). Rows and
uuids are built before the clock starts; times are CPU µs per entry
(`python -m bench.state_floor N`).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import in_fresh_interpreter
from bench.state import FOLDER, synthetic_entries
from ingest.state import OUTCOME_COMMIT_EVERY, SCAN_COMMIT_EVERY, _compact, connect

ITEMS_PER_STATEMENT = 10_000  # a job's result
LINKS_PER_STATEMENT = 1000  # a link batch

_TABLES = """
CREATE TABLE entries (id INTEGER PRIMARY KEY, folder TEXT NOT NULL, fingerprint TEXT NOT NULL,
    title TEXT NOT NULL, rebuild BLOB NOT NULL, item_uuid TEXT);
CREATE UNIQUE INDEX entries_by_fingerprint ON entries (folder, fingerprint);
CREATE INDEX entries_by_item ON entries (item_uuid) WHERE item_uuid IS NOT NULL;
CREATE TABLE links (dataset INTEGER NOT NULL, item_uuid TEXT NOT NULL,
    PRIMARY KEY (dataset, item_uuid)) WITHOUT ROWID;
"""


def _timed(work: Callable[[], None]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def measure(count: int) -> dict[str, Any]:
    entries = synthetic_entries(count)
    return {
        "entries": count,
        "text": _floor(
            [(FOLDER, e.fingerprint, e.title, _compact(e)) for e in entries],
            [(row_id, str(uuid.uuid4())) for row_id in range(1, count + 1)],
        ),
        "binary": _floor(
            [(FOLDER, bytes.fromhex(e.fingerprint), e.title, _compact(e)) for e in entries],
            [(row_id, uuid.uuid4().bytes) for row_id in range(1, count + 1)],
        ),
    }


def _floor(rows: list[tuple[str, Any, str, bytes]], items: list[tuple[int, Any]]) -> dict[str, Any]:
    count, binary = len(rows), isinstance(items[0][1], bytes)
    with tempfile.TemporaryDirectory(prefix="bench-state-floor-") as name:
        path = Path(name) / "floor.sqlite"
        db = connect(path)
        db.executescript(_TABLES)

        def insert() -> None:
            for start in range(0, count, SCAN_COMMIT_EVERY):
                db.executemany(
                    "INSERT INTO entries (folder, fingerprint, title, rebuild) VALUES (?, ?, ?, ?)",
                    rows[start : start + SCAN_COMMIT_EVERY],
                )
                db.commit()

        def give_items() -> None:
            for start in range(0, count, ITEMS_PER_STATEMENT):
                batch = items[start : start + ITEMS_PER_STATEMENT]
                if binary:
                    db.executemany(
                        "UPDATE entries SET item_uuid = ? WHERE id = ?",
                        [(item, row_id) for row_id, item in batch],
                    )
                else:
                    db.execute(
                        "UPDATE entries SET item_uuid = i.value ->> 1 FROM json_each(?) i"
                        " WHERE entries.id = i.value ->> 0",
                        (json.dumps(batch),),
                    )
                if (start + ITEMS_PER_STATEMENT) % OUTCOME_COMMIT_EVERY == 0:
                    db.commit()
            db.commit()

        def link() -> None:
            for start in range(0, count, LINKS_PER_STATEMENT):
                batch = [item for _, item in items[start : start + LINKS_PER_STATEMENT]]
                if binary:
                    db.executemany(
                        "INSERT INTO links (dataset, item_uuid) VALUES (1, ?)",
                        [(item,) for item in batch],
                    )
                else:
                    db.execute(
                        "INSERT INTO links (dataset, item_uuid) SELECT 1, value FROM json_each(?)",
                        (json.dumps(batch),),
                    )
                if (start + LINKS_PER_STATEMENT) % OUTCOME_COMMIT_EVERY == 0:
                    db.commit()
            db.commit()

        stages = {
            name: _timed(work)
            for name, work in (("insert", insert), ("item", give_items), ("link", link))
        }
        db.close()
        disk = sum(p.stat().st_size for p in path.parent.glob("floor.sqlite*"))
    per_entry = {name: round(seconds / count * 1e6, 2) for name, seconds in stages.items()}
    return {
        "cpu_us_per_entry": round(sum(stages.values()) / count * 1e6, 1),
        "stages": per_entry,
        "bytes_on_disk_per_entry": round(disk / count),
    }


def in_subprocess(count: int) -> dict[str, Any]:
    return in_fresh_interpreter("bench.state_floor", str(count))


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
