"""Verification's own work in the run state at N rows, in a fresh interpreter of its own.

The state is the one `bench.state`'s first run leaves (N entries imported, linked, the
folder's index from the jobs' results), built by `python -m bench.verify_state build DIR N`.
Then `python -m bench.verify_state DIR` does what `ingest verify` does in the state once
Encord has answered: `index_folder` of the folder's N items (as it records the Folder's
listing, streamed: here read back from the entries), `compare_with_dataset` over the link
records (`linked_rows`) and `compare_with_folder`; its peak RSS and wall time are the row.
The listing's own side (the SDK's pages of 1,000 items) is `bench.runpath`'s `verify` row.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import state as first_run
from bench.measure import in_fresh_interpreter, peak_rss_mb
from ingest.state import STATE_FILE, RunState


def build(directory: Path, count: int) -> None:
    entries = first_run.synthetic_entries(count)
    with RunState.in_directory(directory) as state:
        first_run.first_import(state, entries, directory)


def verify(directory: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with (
        RunState.in_directory(directory) as state,
        sqlite3.connect(directory / STATE_FILE) as listing,
    ):
        (scan,) = listing.execute("SELECT max(id) FROM scans").fetchone()

        def folder_items() -> Iterator[tuple[str, str, str, float]]:
            """The folder's items as Encord lists them: (uuid, name, URL, created at)."""
            for item_uuid, title in listing.execute("SELECT item_uuid, title FROM entries"):
                yield item_uuid, title, first_run.PREFIX + title, 1.0

        items = state.index_folder(first_run.FOLDER_UUID, folder_items())
        linked = state.linked_rows(first_run.FOLDER, first_run.DATASET)
        differences = sum(1 for _ in state.compare_with_dataset(first_run.FOLDER, scan, linked))
        differences += sum(
            1 for _ in state.compare_with_folder(first_run.FOLDER, scan, first_run.FOLDER_UUID)
        )
    assert differences == 0, differences  # the state's own import: exact
    return {
        "items": items,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def in_subprocess(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-verify-state-") as name:
        in_fresh_interpreter("bench.verify_state", "build", name, str(count))
        return in_fresh_interpreter("bench.verify_state", name)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(Path(sys.argv[2]), int(sys.argv[3]))
        print("{}")
    else:
        print(json.dumps(verify(Path(sys.argv[1]))))
