"""The run state on its own: what a rerun skips, resumes and resubmits."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.encord_format import KINDS
from ingest.files import write_jsonl
from ingest.model import Entry
from ingest.state import (
    _MATCHING_ITEM,
    _SCHEMA_VERSION,
    STATE_FILE,
    RunState,
    _compact,
    _SeenRows,
)

FOLDER = "imports"
PREFIX = "https://bucket.s3.us-east-1.amazonaws.com/"


def entry(name: str, etag: str = "e1", kind: str = "images") -> Entry:
    return Entry(kind=kind, title=name, keys=(name,), urls=(PREFIX + name,), etags=(etag,))


def group(name: str, frames: int) -> Entry:
    keys = tuple(f"{name}/{i}.png" for i in range(frames))
    return Entry(
        kind="image_groups",
        title=name + "/",
        keys=keys,
        urls=tuple(PREFIX + key for key in keys),
        etags=tuple("e" for _ in keys),
        client_metadata={"ward": "a"},
        create_video=True,
    )


def fingerprints(entries: list[Entry]) -> list[str]:
    return [e.fingerprint for e in entries]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[RunState]:
    with RunState.in_directory(tmp_path) as opened:
        yield opened


def scan(state: RunState, entries: list[Entry]) -> tuple[int, list[Entry]]:
    number = state.start_scan(FOLDER)
    new = list(state.record_scan(FOLDER, number, entries))
    state.finish_scan(number)
    return number, new


def test_a_rescan_yields_only_entries_never_submitted(state: RunState, tmp_path: Path) -> None:
    a, b = entry("a.png"), entry("b.png")
    _, new = scan(state, [a, b])
    assert new == [a, b]
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a]))

    _, new = scan(state, [a, b])
    assert new == [b]


def test_a_changed_object_is_new_again(state: RunState, tmp_path: Path) -> None:
    scan(state, [entry("a.png")])
    state.record_job(
        FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([entry("a.png")])
    )

    _, new = scan(state, [entry("a.png", etag="e2")])
    assert [e.etags for e in new] == [("e2",)]


def test_job_result_maps_items_by_title_and_failures_by_url(
    state: RunState, tmp_path: Path
) -> None:
    a, b, g = entry("a.png"), entry("b.png"), group("ward", 3)
    number, _ = scan(state, [a, b, g])
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a, b, g]))
    assert state.pending_jobs(FOLDER) == ["job-1"]

    unaccounted = state.record_job_result(
        "job-1",
        [("a.png", "item-a")],
        [{"object_urls": list(g.urls), "error": "bad frame", "subtask_uuid": "s-1"}],
    )

    assert unaccounted == ["b.png"]
    assert state.pending_jobs(FOLDER) == ["job-1"]  # until settled: a kill here redoes it
    state.finish_job("job-1", "DONE")
    assert state.pending_jobs(FOLDER) == []
    failed = list(state.failed_units(FOLDER, number))
    assert failed == [
        (
            "ward/",
            {
                "url": g.urls[0],
                "job_id": "job-1",
                "object_urls": list(g.urls),
                "error": "bad frame",
                "subtask_uuid": "s-1",
            },
        )
    ]
    state.resolve_item("job-1", "b.png", "item-b")
    assert state.counts(FOLDER, number, "dataset") == {
        "entries": 3,
        "submitted": 3,
        "uploaded": 2,
        "failed": 1,
        "linked": 0,
    }


def test_an_entry_missing_from_the_result_and_the_folder_fails(
    state: RunState, tmp_path: Path
) -> None:
    a = entry("a.png")
    number, _ = scan(state, [a])
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a]))
    state.record_job_result("job-1", [], [])
    state.resolve_item("job-1", "a.png", None)
    assert [title for title, _ in state.failed_units(FOLDER, number)] == ["a.png"]


def test_a_job_that_fails_as_a_whole_leaves_its_entries_to_resubmit(
    state: RunState, tmp_path: Path
) -> None:
    a, b = entry("a.png"), entry("b.png")
    scan(state, [a, b])
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a, b]))

    assert state.record_job_result("job-1", [("a.png", "item-a")], []) == ["b.png"]
    state.finish_job("job-1", "ERROR")

    assert (state.job("job-1") or {})["status"] == "ERROR"
    _, new = scan(state, [a, b])
    assert new == [b]


def test_failed_entries_survive_being_resubmitted_while_read(
    state: RunState, tmp_path: Path
) -> None:
    entries = [entry(f"{i:03d}.png") for i in range(7)] + [group("ward", 2)]
    number, _ = scan(state, entries)
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints(entries))
    state.record_job_result(
        "job-1",
        [],
        [{"object_urls": [e.urls[0]], "error": "x", "subtask_uuid": "s"} for e in entries],
    )

    resubmitted = []
    for failed in state.failed_entries(FOLDER, number, page_size=3):
        resubmitted.append(failed)
        state.record_job(
            FOLDER, "folder-uuid", "job-2", tmp_path / "m2.json", fingerprints([failed])
        )

    assert sorted(resubmitted, key=lambda e: e.title) == sorted(entries, key=lambda e: e.title)
    assert [e.fingerprint for e in resubmitted] == [
        e.fingerprint for e in sorted(entries, key=lambda e: e.title)
    ]
    assert list(state.failed_entries(FOLDER, number)) == []


def test_unlinked_items_come_in_batches_until_all_are_recorded(
    state: RunState, tmp_path: Path
) -> None:
    entries = [entry(f"{i}.png") for i in range(5)]
    number, _ = scan(state, entries)
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints(entries))
    state.record_job_result("job-1", [(e.title, f"item-{e.title}") for e in entries], [])

    batches = []
    for batch in state.unlinked_items(FOLDER, number, "ds", batch_size=2):
        batches.append(batch)
        state.record_links("ds", batch)

    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert sorted(item for batch in batches for item in batch) == sorted(
        f"item-{e.title}" for e in entries
    )
    assert list(state.unlinked_items(FOLDER, number, "ds", batch_size=2)) == []
    assert len(next(state.unlinked_items(FOLDER, number, "another-dataset", batch_size=9))) == 5
    assert state.counts(FOLDER, number, "ds")["linked"] == 5


def test_comparison_reports_missing_extra_and_wrong_items(state: RunState, tmp_path: Path) -> None:
    a, b, c = entry("a.png"), entry("b.png"), entry("c.png")
    number, _ = scan(state, [a, b, c])
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a, b, c]))
    state.record_job_result("job-1", [("a.png", "item-a"), ("b.png", "item-b")], [])

    rows = [("a.png", "item-a"), ("b.png", "another-item"), ("stray.png", None)]
    differences = list(state.compare_with_dataset(FOLDER, number, rows))

    assert differences == [
        ("missing", "b.png"),
        ("missing", "c.png"),
        ("extra", "b.png"),
        ("extra", "stray.png"),
    ]
    exact = [("a.png", "item-a"), ("b.png", "item-b"), ("c.png", None)]
    assert list(state.compare_with_dataset(FOLDER, number, exact)) == []


def test_scans_and_links_are_kept_apart_per_folder(state: RunState, tmp_path: Path) -> None:
    a = entry("a.png")
    scan(state, [a])
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a]))
    other = state.start_scan("other-folder")
    assert list(state.record_scan("other-folder", other, [a])) == [a]
    assert state.latest_scan("other-folder") is None


def test_state_survives_reopening(tmp_path: Path) -> None:
    a = entry("a.png")
    with RunState.in_directory(tmp_path) as state:
        scan(state, [a])
        state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a]))
    with RunState.in_directory(tmp_path) as state:
        assert state.pending_jobs(FOLDER) == ["job-1"]
        assert (state.job("job-1") or {})["folder_uuid"] == "folder-uuid"


def test_reports_are_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    write_jsonl(path, [{"a": 1}, {"b": "é"}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": "é"}]

    def failing():
        yield {"c": 3}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(path, failing())
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": "é"}]


def test_sidecars_are_read_again_only_when_their_etag_changes(tmp_path: Path) -> None:
    gets: list[tuple[str, str | None]] = []

    def read(key: str, etag: str | None) -> bytes:
        gets.append((key, etag))
        return f"{key}@{etag}".encode()

    def sync(*sidecars: tuple[str, str | None]) -> list[bytes]:
        with RunState.in_directory(tmp_path, exclusive=True) as state:
            read_through = state.cached_sidecars(read)
            bodies = [read_through(key, etag) for key, etag in sidecars]
            scan(state, [entry("a.png")])  # stored with the scan's commits
        return bodies

    assert sync(("a.json", "1"), ("b.json", "1")) == [b"a.json@1", b"b.json@1"]
    assert sync(("a.json", "1"), ("b.json", "2")) == [b"a.json@1", b"b.json@2"]
    assert sync(("a.json", "1"), ("b.json", "2"), ("c.json", None)) == [
        b"a.json@1",
        b"b.json@2",
        b"c.json@None",
    ]
    assert gets == [("a.json", "1"), ("b.json", "1"), ("b.json", "2"), ("c.json", None)]


def test_an_entry_that_left_the_bucket_leaves_the_scan_and_returns_with_it(
    state: RunState,
) -> None:
    a, b, c = entry("a.png"), entry("b.png"), entry("c.png")
    first, _ = scan(state, [a, b, c])
    second, new = scan(state, [a, c])
    assert new == [a, c]  # never submitted: still offered
    assert state.counts(FOLDER, second, None)["entries"] == 2
    assert state.counts(FOLDER, first, None)["entries"] == 3  # history of the latest scans
    third, new = scan(state, [a, b, c])
    assert new == [a, b, c]
    assert state.counts(FOLDER, third, None)["entries"] == 3
    assert state.counts(FOLDER, second, None)["entries"] == 2


def test_an_unchanged_rescan_writes_no_entry(tmp_path: Path) -> None:
    entries = [entry(f"{i:04d}.png") for i in range(2500)] + [group("ward", 3)]
    with RunState.in_directory(tmp_path) as state:
        scan(state, entries)
        state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints(entries))
    count_writes(tmp_path, "entries", "INSERT", "UPDATE")
    with RunState.in_directory(tmp_path) as state:
        number, new = scan(state, entries)
        assert new == []
        assert state.counts(FOLDER, number, None) == {
            "entries": 2501,
            "submitted": 2501,
            "uploaded": 0,
            "failed": 0,
            "linked": 0,
        }
        _, new = scan(state, [*entries[1:], entry("new.png")])
        assert new == [entry("new.png")]
    assert writes(tmp_path) == 2  # the second rescan: one entry inserted, one marked gone


# Runs of ids (first id, length) as a rerun's batches are, and ids with gaps.
_ID_RUNS = st.tuples(st.integers(0, 300), st.integers(0, 80)).map(
    lambda run: list(range(run[0], run[0] + run[1]))
)
_GAPPED_IDS = st.lists(st.integers(0, 400), max_size=30, unique=True).map(sorted)


@given(st.lists(st.tuples(st.one_of(_ID_RUNS, _GAPPED_IDS), st.integers(0, 400)), max_size=8))
def test_the_rows_a_scan_saw_are_a_set_of_ids(additions: list[tuple[list[int], int]]) -> None:
    # What `_mark_gone` relies on: whether the scan saw a row, and how many it saw.
    seen, expected = _SeenRows(), set()
    for ascending, single in additions:
        seen.add_ascending(ascending)
        seen.add(single)
        expected.update([*ascending, single])

    assert seen.count == len(expected)
    assert [row_id for row_id in range(500) if row_id in seen] == sorted(expected)


def count_writes(directory: Path, table: str, *events: str) -> None:
    """From now on, a trigger of the state file's own counts the rows `events` write to
    `table` (read with `writes`)."""
    triggers = "".join(
        f"CREATE TRIGGER counted_{event.lower()} AFTER {event} ON {table}"
        " BEGIN INSERT INTO writes VALUES (1); END;"
        for event in events
    )
    with sqlite3.connect(directory / STATE_FILE) as watcher:
        watcher.executescript(f"CREATE TABLE writes (n INTEGER); {triggers}")


def writes(directory: Path) -> int:
    with sqlite3.connect(directory / STATE_FILE) as watcher:
        return int(watcher.execute("SELECT count(*) FROM writes").fetchone()[0])


def test_retry_rebuilds_entries_whatever_their_urls(state: RunState, tmp_path: Path) -> None:
    quoted = Entry(
        kind="images",
        title="a b.png",
        keys=("a b.png",),
        urls=(PREFIX + "a%20b.png",),
        etags=("e",),
    )
    entries = [quoted, group("ward", 3), entry("c.png")]
    number, _ = scan(state, entries)
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints(entries))
    state.record_job_result(
        "job-1",
        [],
        [{"object_urls": [e.urls[0]], "error": "x", "subtask_uuid": "s"} for e in entries],
    )
    rebuilt = list(state.failed_entries(FOLDER, number))
    assert rebuilt == sorted(entries, key=lambda e: e.title)
    assert [e.fingerprint for e in rebuilt] == fingerprints(rebuilt)


def test_a_state_file_of_an_older_layout_is_rebuilt(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / STATE_FILE) as old:
        old.execute(
            "CREATE TABLE entries (folder TEXT, fingerprint TEXT, entry TEXT, scan INTEGER)"
        )
        old.execute("INSERT INTO entries VALUES ('imports', 'f', '{}', 1)")
    with RunState.in_directory(tmp_path) as state:
        _, new = scan(state, [entry("a.png")])
        assert new == [entry("a.png")]


def test_a_scan_not_recorded_to_its_end_cannot_finish(state: RunState) -> None:
    number = state.start_scan(FOLDER)
    recording = state.record_scan(FOLDER, number, [entry("a.png"), entry("b.png")])
    next(recording)
    with pytest.raises(ValueError, match="not recorded to its end"):
        state.finish_scan(number)


def test_entries_rebuilt_from_the_state_keep_their_sizes(state: RunState) -> None:
    sized = Entry(
        kind="images",
        title="s.png",
        keys=("s.png",),
        urls=(PREFIX + "s.png",),
        etags=("e",),
        sizes=(1234,),
    )
    scan(state, [sized, entry("u.png")])
    rebuilt = state.held_entries(FOLDER, fingerprints([sized, entry("u.png")]))
    assert [(e.title, e.sizes) for e in rebuilt] == [("s.png", (1234,)), ("u.png", ())]


def test_what_a_killed_scan_marked_gone_is_still_in_the_latest_finished_scan(
    state: RunState,
) -> None:
    a, b = entry("a.png"), entry("b.png")
    first, _ = scan(state, [a, b])
    killed = state.start_scan(FOLDER)
    assert list(state.record_scan(FOLDER, killed, [a])) == [a]  # never finished
    assert state.counts(FOLDER, killed, None)["entries"] == 1  # exact before it finishes
    assert state.counts(FOLDER, first, None)["entries"] == 2
    killed_too = state.start_scan(FOLDER)
    assert list(state.record_scan(FOLDER, killed_too, [a, b])) == [a, b]
    assert state.latest_scan(FOLDER) == first
    assert state.counts(FOLDER, first, None)["entries"] == 2


def test_a_partial_scan_joins_the_latest_finished_one_and_stands_for_its_entries_alone(
    state: RunState, tmp_path: Path
) -> None:
    a, b, c = entry("a.png"), entry("b.png"), entry("c.png")
    with pytest.raises(ValueError, match="needs a finished scan"):
        state.start_scan(FOLDER, partial=True)
    first, _ = scan(state, [a, b])
    state.record_job(FOLDER, "folder-uuid", "job-1", tmp_path / "m.json", fingerprints([a, b]))
    batch = state.start_scan(FOLDER, partial=True)
    assert list(state.record_scan(FOLDER, batch, [b, c])) == [c]
    assert state.counts(FOLDER, batch, None) == {
        "entries": 2,
        "submitted": 1,
        "uploaded": 0,
        "failed": 0,
        "linked": 0,
    }
    assert state.latest_scan(FOLDER) == first
    assert state.counts(FOLDER, first, None)["entries"] == 3  # c joined it, a is not gone
    with pytest.raises(ValueError, match="not recorded to its end"):
        state.finish_scan(batch)
    full, new = scan(state, [a, b, c])
    assert new == [c]
    assert state.counts(FOLDER, full, None)["entries"] == 3


def test_a_layout_4_file_keeps_its_links_jobs_and_provenance(tmp_path: Path) -> None:
    signature = json.dumps([["e1"], [5]], separators=(",", ":"))
    with sqlite3.connect(tmp_path / STATE_FILE) as old:
        old.executescript(
            "CREATE TABLE entries (id INTEGER PRIMARY KEY, folder TEXT, job_id TEXT);"
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, folder TEXT NOT NULL,"
            " folder_uuid TEXT NOT NULL, manifest TEXT NOT NULL, status TEXT NOT NULL"
            " DEFAULT 'PENDING');"
            "CREATE TABLE links (dataset TEXT NOT NULL, item_uuid TEXT NOT NULL,"
            " PRIMARY KEY (dataset, item_uuid));"
            "CREATE TABLE mirror_items (folder TEXT NOT NULL, item_uuid TEXT NOT NULL,"
            " fingerprint TEXT, title TEXT NOT NULL, urls TEXT NOT NULL, etags TEXT NOT NULL,"
            " signature TEXT, status TEXT NOT NULL DEFAULT 'present',"
            " PRIMARY KEY (folder, item_uuid));"
            "CREATE INDEX mirror_items_by_title ON mirror_items (folder, title);"
            "CREATE INDEX mirror_items_by_signature ON mirror_items (folder, signature);"
            "INSERT INTO jobs VALUES ('job-1', 'imports', 'fu', 'm.json', 'PENDING');"
            "CREATE TABLE job_intents (intent INTEGER PRIMARY KEY AUTOINCREMENT,"
            " folder TEXT NOT NULL, folder_uuid TEXT NOT NULL, manifest TEXT NOT NULL,"
            " started_at REAL NOT NULL);"
            "CREATE TABLE intent_entries (intent INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
            " PRIMARY KEY (intent, fingerprint));"
            "INSERT INTO job_intents VALUES (7, 'imports', 'fu', 'm7.json', 1.5);"
            "INSERT INTO intent_entries VALUES (7, 'fp');"
            "INSERT INTO links VALUES ('dataset', 'item-a');"
            "PRAGMA user_version = 4;"
        )
        old.execute(
            "INSERT INTO mirror_items VALUES (?, 'item-a', 'fp', 'a.png', ?, '[\"e1\"]', ?,"
            " 'present')",
            (FOLDER, json.dumps([PREFIX + "a.png"]), signature),
        )
    with RunState.in_directory(tmp_path) as state:
        assert state.pending_jobs(FOLDER) == ["job-1"]
        assert state.orphaned_intents(FOLDER) == [(7, "fu", "m7.json", 1.5)]
        prior = state.prior_by_title(FOLDER, "a.png")
        assert prior is not None
        assert (prior.item_uuid, prior.urls, prior.etags, prior.signature) == (
            "item-a",
            (PREFIX + "a.png",),
            ("e1",),
            signature,
        )
        assert state.signature_elsewhere(FOLDER, signature, "b.png")
        assert not state.signature_elsewhere(FOLDER, signature, "a.png")
        _, new = scan(state, [entry("a.png")])
        assert new == [entry("a.png")]  # entries are rebuilt: submitted again
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert linked(db) == [("dataset", "item-a")]
        assert db.execute("SELECT intent, fingerprints FROM job_intents").fetchall() == [
            (7, '["fp"]')
        ]
        (layout,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'links'")
        assert "WITHOUT ROWID" in layout[0]  # each link stored once


def linked(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(Dataset, item) of each link recorded."""
    return db.execute(
        "SELECT d.dataset, l.item_uuid FROM links l JOIN datasets d ON d.number = l.dataset"
        " ORDER BY 1, 2"
    ).fetchall()


def mirrored_rows(path: Path) -> list[tuple]:
    """(item, title, status) of the provenance the entries are, and how many items' is
    recorded apart from them."""
    with sqlite3.connect(path / STATE_FILE) as db:
        rows = db.execute(
            "SELECT item_uuid, title, mirrored FROM entries WHERE mirrored != 0 ORDER BY title"
        ).fetchall()
        (recovered,) = db.execute("SELECT count(*) FROM mirror_items").fetchone()
    return [*rows, ("recovered", recovered)]


def test_provenance_is_the_entry_and_follows_changes(tmp_path: Path) -> None:
    sized = Entry("images", "a.png", ("a.png",), (PREFIX + "a.png",), ("e1",), sizes=(5,))
    entries = [sized, group("ward", 2)]
    with RunState.in_directory(tmp_path) as state:
        number, _ = scan(state, entries)
        state.record_job(FOLDER, "fu", "job-1", tmp_path / "m.json", fingerprints(entries))
        state.record_job_result("job-1", [("a.png", "item-a"), ("ward/", "item-w")], [])
        assert not state.has_mirrored(FOLDER)  # imported, not yet recorded as provenance
        state.record_mirrored(FOLDER, number)
        assert state.mirrored_folders() == [FOLDER] and state.mirrored_count(FOLDER) == 2
        prior = state.prior_by_title(FOLDER, "a.png")
        assert prior is not None
        assert (prior.urls, prior.etags) == (sized.urls, sized.etags)
        assert prior.signature == json.dumps([["e1"], [5]], separators=(",", ":"))
        ward = state.prior_by_title(FOLDER, "ward/")
        assert ward is not None and ward.urls == entries[1].urls
        assert state.signature_elsewhere(FOLDER, prior.signature, "moved.png")
        assert not state.signature_elsewhere(FOLDER, prior.signature, "a.png")
        assert mirrored_rows(tmp_path) == [
            ("item-a", "a.png", 1),
            ("item-w", "ward/", 1),
            ("recovered", 0),
        ]
    # An unchanged sync records nothing: not a row of the entries written.
    count_writes(tmp_path, "entries", "UPDATE")
    with RunState.in_directory(tmp_path) as state:
        number, _ = scan(state, entries)
        state.record_mirrored(FOLDER, number)
        assert writes(tmp_path) == 0
        # The item unlinked and its object listed again: present again.
        state.finish_removal(FOLDER, "dataset", ["item-a"], "unlink", deleted=False)
        assert state.prior_by_title(FOLDER, "a.png").status == "unlinked"  # type: ignore[union-attr]
        assert state.mirrored_count(FOLDER) == 1
        state.record_mirrored(FOLDER, number)
        assert state.prior_by_title(FOLDER, "a.png").status == "present"  # type: ignore[union-attr]
        # The entry given another item (a de-duplication kept that one): recorded as its.
        state.deduplicated(FOLDER, sized.fingerprint, "item-b")
        assert state.prior_by_title(FOLDER, "a.png") is None
        state.record_mirrored(FOLDER, number)
        assert ("item-b", "a.png", 1) in mirrored_rows(tmp_path)
        # Another entry imported as the same item (its metadata updated in place): the
        # item's provenance moves to it, and a recovered row of that item is dropped.
        state.seed_mirrored(FOLDER, [("item-w", "ward/", entries[1].urls)])
        assert mirrored_rows(tmp_path)[-1] == ("recovered", 0)  # the entry stands for it
        renamed = entry("b.png")
        state.seed_mirrored(FOLDER, [("item-z", "z.png", (PREFIX + "z.png",))])
        number, new = scan(state, [*entries, renamed])
        state.record_job(FOLDER, "fu", "job-2", tmp_path / "m.json", fingerprints(new))
        state.record_job_result("job-2", [("b.png", "item-z")], [])
        state.record_mirrored(FOLDER, number)
        assert mirrored_rows(tmp_path) == [
            ("item-b", "a.png", 1),
            ("item-z", "b.png", 1),
            ("item-w", "ward/", 1),
            ("recovered", 0),
        ]
        gone = [(prior.title, prior.status) for prior in state.gone(FOLDER, number)]
        assert gone == []


def synced(state: RunState, entries: list[Entry], job: str) -> int:
    """A sync as `ingest run` records it: scan, upload, mirror step, provenance."""
    number = state.start_scan(FOLDER)
    new = list(state.record_scan(FOLDER, number, entries))
    gone = [prior.title for prior in state.gone(FOLDER, number)]
    state.finish_scan(number)
    if new:
        state.record_job(FOLDER, "fu", job, Path("m.json"), fingerprints(new))
        state.record_job_result(job, [(e.title, f"item-{e.title}-{job}") for e in new], [])
    state.record_mirrored(FOLDER, number)
    return len(gone)


def test_gone_is_not_read_again_while_nothing_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [entry("a.png"), entry("b.png")]
    with RunState.in_directory(tmp_path) as state:
        assert synced(state, entries, "job-1") == 0
    with RunState.in_directory(tmp_path) as state:
        with monkeypatch.context() as patched:
            patched.setattr(state, "_gone", lambda *args: pytest.fail("gone was read"))
            assert synced(state, entries[::-1], "job-2") == 0  # the same, listed otherwise
            assert synced(state, [*entries, entry("c.png")], "job-3") == 0  # more, none left
        assert synced(state, entries, "job-4") == 1  # c.png left: read, and found
        assert synced(state, entries, "job-5") == 1  # found every time


def test_gone_is_read_again_after_what_could_add_to_it(tmp_path: Path) -> None:
    entries = [entry("a.png"), entry("b.png")]
    with RunState.in_directory(tmp_path) as state:
        synced(state, entries, "job-1")
        synced(state, entries, "job-2")
        state.seed_mirrored(FOLDER, [("item-x", "x.png", (PREFIX + "x.png",))])
        assert synced(state, entries, "job-3") == 1  # the recovered item: not listed
        assert synced(state, entries, "job-4") == 1  # still not (found every time)
    with RunState.in_directory(tmp_path / "watched") as state:
        synced(state, entries, "job-1")
        synced(state, entries, "job-2")
        state.leave_mirror(FOLDER, [entries[0].fingerprint])  # `ingest watch`: removed
        assert synced(state, entries[1:], "job-3") == 1


def linked_sync(state: RunState, entries: list[Entry]) -> tuple[int, list[str], dict[str, int]]:
    """A sync's recording, linking (every batch linked) and counts."""
    number = state.start_scan(FOLDER)
    list(state.record_scan(FOLDER, number, entries))
    state.finish_scan(number)
    yielded: list[str] = []
    for batch in state.unlinked_items(FOLDER, number, "dataset", 2):
        yielded += batch
        state.record_links("dataset", batch)
    return number, yielded, state.counts(FOLDER, number, "dataset")


def test_links_are_not_read_again_while_nothing_changed(tmp_path: Path) -> None:
    entries = [entry(f"{name}.png") for name in "abc"]
    with RunState.in_directory(tmp_path) as state:
        number = state.start_scan(FOLDER)
        list(state.record_scan(FOLDER, number, entries))
        state.finish_scan(number)
        state.record_job(FOLDER, "fu", "job-1", tmp_path / "m.json", fingerprints(entries))
        state.record_job_result("job-1", [(e.title, f"item-{e.title}") for e in entries], [])
        assert (
            len(
                [
                    item
                    for batch in state.unlinked_items(FOLDER, number, "dataset", 2)
                    for item in batch
                ]
            )
            == 3
        )  # not recorded: nothing proven
        _, yielded, counts = linked_sync(state, entries)
        assert len(yielded) == 3 and counts["linked"] == 3
    with sqlite3.connect(tmp_path / STATE_FILE) as db:  # behind the state's back
        db.execute("DELETE FROM links WHERE item_uuid = 'item-a.png'")
    with RunState.in_directory(tmp_path) as state:
        # The same entries, items and links as far as the state knows: nothing read.
        _, yielded, counts = linked_sync(state, entries)
        assert yielded == [] and counts["linked"] == 3
        # A link removed through the state: read again.
        state.finish_removal(FOLDER, "dataset", ["item-b.png"], "unlink", deleted=False)
        _, yielded, counts = linked_sync(state, entries)
        assert sorted(yielded) == ["item-a.png", "item-b.png"] and counts["linked"] == 3
        # An entry given another item: read again.
        state.deduplicated(FOLDER, entries[2].fingerprint, "item-c2")
        _, yielded, counts = linked_sync(state, entries)
        assert yielded == ["item-c2"] and counts["linked"] == 3
        # Another entry listed: read again.
        number, yielded, counts = linked_sync(state, [*entries, entry("d.png")])
        assert yielded == [] and counts == {
            "entries": 4,
            "submitted": 3,
            "uploaded": 3,
            "failed": 0,
            "linked": 3,
        }


LAYOUT_5 = """
CREATE TABLE scans (id INTEGER PRIMARY KEY AUTOINCREMENT, folder TEXT NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0);
CREATE TABLE entries (id INTEGER PRIMARY KEY, folder TEXT NOT NULL, fingerprint TEXT NOT NULL,
    title TEXT NOT NULL, kind INTEGER NOT NULL, first_url TEXT NOT NULL, rebuild BLOB NOT NULL,
    seen_from INTEGER NOT NULL, gone_at INTEGER, job INTEGER, item_uuid TEXT, error TEXT,
    mirrored INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX entries_by_fingerprint ON entries (folder, fingerprint);
CREATE INDEX entries_to_mirror ON entries (id) WHERE item_uuid IS NOT NULL AND mirrored = 0;
CREATE TRIGGER entries_item_changed AFTER UPDATE OF item_uuid ON entries
    WHEN old.mirrored = 1 AND old.item_uuid IS NOT new.item_uuid
    BEGIN UPDATE entries SET mirrored = 0 WHERE id = new.id; END;
CREATE TABLE entry_jobs (number INTEGER PRIMARY KEY, job_id TEXT NOT NULL UNIQUE);
CREATE TABLE jobs (job_id TEXT PRIMARY KEY, folder TEXT NOT NULL, folder_uuid TEXT NOT NULL,
    manifest TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'PENDING');
CREATE TABLE links (dataset TEXT NOT NULL, item_uuid TEXT NOT NULL,
    PRIMARY KEY (dataset, item_uuid)) WITHOUT ROWID;
CREATE TABLE job_intents (intent INTEGER PRIMARY KEY AUTOINCREMENT, folder TEXT NOT NULL,
    folder_uuid TEXT NOT NULL, manifest TEXT NOT NULL, started_at REAL NOT NULL);
CREATE TABLE intent_entries (intent INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    PRIMARY KEY (intent, fingerprint)) WITHOUT ROWID;
CREATE TABLE mirror_items (folder TEXT NOT NULL, item_uuid TEXT NOT NULL, fingerprint TEXT,
    title TEXT NOT NULL, urls TEXT, etags TEXT, signature BLOB, signature_text TEXT,
    status TEXT NOT NULL DEFAULT 'present', PRIMARY KEY (folder, item_uuid));
CREATE INDEX mirror_items_by_title ON mirror_items (folder, title, status);
CREATE INDEX mirror_items_by_signature ON mirror_items (folder, signature);
PRAGMA user_version = 5;
"""


def test_a_layout_5_file_keeps_its_entries_jobs_links_and_provenance(tmp_path: Path) -> None:
    present = Entry("images", "a.png", ("a.png",), (PREFIX + "a.png",), ("e1",), sizes=(5,))
    unlinked, pending = entry("b.png"), entry("c.png")
    recovered_signature = json.dumps([["e9"], [9]], separators=(",", ":"))
    with sqlite3.connect(tmp_path / STATE_FILE) as old:
        old.executescript(LAYOUT_5)
        old.execute("INSERT INTO scans (folder, finished) VALUES (?, 1)", (FOLDER,))
        old.execute("INSERT INTO entry_jobs VALUES (1, 'job-1'), (2, 'job-2')")
        old.execute("INSERT INTO jobs VALUES ('job-2', ?, 'fu', 'm2.json', 'PENDING')", (FOLDER,))
        for e, job, item, mirrored in (
            (present, 1, "item-a", 1),
            (unlinked, 1, "item-b", 0),
            (pending, 2, None, 0),
        ):
            old.execute(
                "INSERT INTO entries (folder, fingerprint, title, kind, first_url, rebuild,"
                " seen_from, job, item_uuid, mirrored) VALUES (?, ?, ?, 0, ?, ?, 1, ?, ?, ?)",
                (FOLDER, e.fingerprint, e.title, e.urls[0], _compact(e), job, item, mirrored),
            )
        old.executemany(
            "INSERT INTO mirror_items (folder, item_uuid, fingerprint, title, status)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (FOLDER, "item-a", present.fingerprint, "a.png", "present"),
                (FOLDER, "item-b", unlinked.fingerprint, "b.png", "unlinked"),
            ],
        )
        old.execute(
            "INSERT INTO mirror_items (folder, item_uuid, title, urls, etags, signature,"
            " signature_text) VALUES (?, 'item-x', 'x.png', ?, '[\"e9\"]', x'00', ?)",
            (FOLDER, json.dumps([PREFIX + "x.png"]), recovered_signature),
        )
        old.execute("INSERT INTO links VALUES ('dataset', 'item-a')")
        old.execute("INSERT INTO job_intents VALUES (7, ?, 'fu', 'm7.json', 1.5)", (FOLDER,))
        old.execute("INSERT INTO intent_entries VALUES (7, ?)", (pending.fingerprint,))
    with RunState.in_directory(tmp_path) as state:
        assert state.pending_jobs(FOLDER) == ["job-2"]
        assert state.orphaned_intents(FOLDER) == [(7, "fu", "m7.json", 1.5)]
        a, b, x = (state.prior_by_title(FOLDER, f"{name}.png") for name in "abx")
        assert a is not None and b is not None and x is not None
        assert (a.item_uuid, a.urls, a.etags, a.status) == (
            "item-a",
            present.urls,
            ("e1",),
            "present",
        )
        assert (b.item_uuid, b.status) == ("item-b", "unlinked")
        assert (x.item_uuid, x.urls, x.signature) == (
            "item-x",
            (PREFIX + "x.png",),
            recovered_signature,
        )
        assert state.signature_elsewhere(FOLDER, a.signature, "moved.png")
        assert state.signature_elsewhere(FOLDER, recovered_signature, "moved.png")
        assert state.mirrored_count(FOLDER) == 2  # a.png and the recovered x.png
        # The entries are kept: a rescan submits nothing again, and finds x.png gone.
        number = state.start_scan(FOLDER)
        assert list(state.record_scan(FOLDER, number, [present, unlinked, pending])) == []
        assert [prior.title for prior in state.gone(FOLDER, number)] == ["x.png"]
        state.finish_scan(number)
        assert state.counts(FOLDER, number, "dataset") == {
            "entries": 3,
            "submitted": 3,
            "uploaded": 2,
            "failed": 0,
            "linked": 1,
        }
        state.record_mirrored(FOLDER, number)  # b.png listed again: present again
        assert state.prior_by_title(FOLDER, "b.png").status == "present"  # type: ignore[union-attr]
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (_SCHEMA_VERSION,)
        assert db.execute("SELECT item_uuid FROM mirror_items").fetchall() == [("item-x",)]


def test_a_layout_6_file_keeps_its_entries_and_links_and_new_entries_store_their_url_base(
    tmp_path: Path,
) -> None:
    failed = [entry("a.png"), group("ward", 2)]
    with RunState.in_directory(tmp_path):
        pass  # today's tables: layout 6 is them without `url_bases`, with Datasets' hashes
    with sqlite3.connect(tmp_path / STATE_FILE) as old:
        old.executescript(
            "DROP TABLE url_bases; DROP TABLE links; DROP TABLE datasets;"
            "CREATE TABLE links (dataset TEXT NOT NULL, item_uuid TEXT NOT NULL,"
            " PRIMARY KEY (dataset, item_uuid)) WITHOUT ROWID;"
            "INSERT INTO links VALUES ('dataset-1', 'item-x'), ('dataset-1', 'item-y'),"
            " ('dataset-2', 'item-x');"
            "PRAGMA user_version = 6;"
        )
        old.execute("INSERT INTO scans (folder, finished) VALUES (?, 1)", (FOLDER,))
        old.execute("INSERT INTO entry_jobs VALUES (1, 'job-1')")
        for e in failed:  # layout 6 stored every first URL whole
            old.execute(
                "INSERT INTO entries (folder, fingerprint, title, kind, first_url, rebuild,"
                ' seen_from, job, error) VALUES (?, ?, ?, ?, ?, ?, 1, 1, \'{"error": "x"}\')',
                (
                    FOLDER,
                    e.fingerprint,
                    e.title,
                    KINDS.index(e.kind),
                    e.urls[0],
                    _compact(e),
                ),
            )
    elsewhere = Entry("images", "c.png", ("c.png",), ("https://other.example/c.png",), ("e",))
    with RunState.in_directory(tmp_path) as state:
        number = state.start_scan(FOLDER)
        new = list(state.record_scan(FOLDER, number, [*failed, entry("b.png"), elsewhere]))
        assert new == [entry("b.png"), elsewhere]  # the failed ones kept: not new
        state.finish_scan(number)
        assert list(state.failed_entries(FOLDER, number)) == failed
        assert list(state.held_entries(FOLDER, fingerprints(new))) == new
        state.finish_removal(FOLDER, "dataset-1", ["item-y"], "unlink", deleted=False)
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (_SCHEMA_VERSION,)
        assert linked(db) == [("dataset-1", "item-x"), ("dataset-2", "item-x")]
        assert db.execute("SELECT * FROM url_bases").fetchall() == [(FOLDER, PREFIX)]
        stored = db.execute("SELECT title, first_url FROM entries ORDER BY id").fetchall()
        assert stored == [
            ("a.png", PREFIX + "a.png"),
            ("ward/", PREFIX + "ward/0.png"),
            ("b.png", ""),  # its folder's base and its title
            ("c.png", "https://other.example/c.png"),
        ]


def test_links_are_committed_on_close_and_a_kill_loses_only_links_linked_again(
    tmp_path: Path,
) -> None:
    entries = [entry(f"{name}.png") for name in "abc"]
    with RunState.in_directory(tmp_path) as state:
        scan(state, entries)
        state.record_job(FOLDER, "fu", "job-1", tmp_path / "m.json", fingerprints(entries))
        state.record_job_result("job-1", [(e.title, f"item-{e.title}") for e in entries], [])
        state.record_links("dataset", ["item-a.png"])
    killed = (
        "import os, sys; from pathlib import Path; from ingest.state import RunState;"
        "state = RunState.in_directory(Path(sys.argv[1]));"
        "state.record_links('dataset', ['item-b.png']); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", killed, str(tmp_path)], check=False)
    with RunState.in_directory(tmp_path) as state:
        number, _ = scan(state, entries)
        unlinked = [
            item for batch in state.unlinked_items(FOLDER, number, "dataset", 10) for item in batch
        ]
        assert unlinked == ["item-b.png", "item-c.png"]  # b's record lost: linked again


def test_entries_rebuilt_from_the_state_keep_their_etags_as_listed(
    state: RunState, tmp_path: Path
) -> None:
    md5 = "9e107d9d372bb6826bd81d3542a419d6"
    etags = [md5, md5.upper(), f"{md5}-3", "z" * 32, " ".join([md5[:2]] * 11)[:32]]
    entries = [entry(f"{number}.png", etag) for number, etag in enumerate(etags)]
    number, _ = scan(state, entries)
    state.record_job(FOLDER, "fu", "job-1", tmp_path / "m.json", fingerprints(entries))
    state.record_job_result(
        "job-1", [], [{"object_urls": [e.urls[0]], "error": "x"} for e in entries]
    )
    assert list(state.failed_entries(FOLDER, number)) == entries
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        sizes = [length for (length,) in db.execute("SELECT length(rebuild) FROM entries")]
    assert sizes[0] < sizes[1] - 10  # an MD5 in lowercase hex: 16 bytes, not 32 characters


def test_a_rolled_back_insert_parts_no_entry_from_its_url_base_nor_its_job(
    state: RunState, tmp_path: Path
) -> None:
    a, b, c = entry("a.png"), entry("b.png"), entry("c.png")
    number = state.start_scan(FOLDER)
    recording = state.record_scan(FOLDER, number, [a])
    assert next(recording) == a  # inserted, not committed yet
    state._db.rollback()  # as an error would: a's row is gone, its id free again
    assert list(recording) == []  # the scan records nothing more
    _, new = scan(state, [b, c])
    assert new == [b, c]  # b took a's id
    assert list(state.held_entries(FOLDER, fingerprints(new))) == new  # their URL base too
    state.record_job(FOLDER, "fu", "job-1", tmp_path / "m.json", fingerprints([a, c]))
    _, new = scan(state, [b, c])
    assert new == [b]  # c submitted; b not, whatever id was kept for a


def _settled_orphan(state: RunState, intent: int) -> tuple[int, int, bool]:
    """(entries without an item in the folder, entries found, dedupe marked) for `intent`,
    with the folder holding an item for a.png only."""
    state.index_folder("fu", [("item-a", "a.png", PREFIX + "a.png", 1.0)])
    unmatched = state.intent_urls_unmatched(intent, "fu")
    found = state.settle_intent(intent, FOLDER, "fu", "m.json")
    return unmatched, found, state.needs_dedupe(FOLDER)


def test_an_orphaned_intent_settles_its_entries_from_the_folder(state: RunState) -> None:
    a, b = entry("a.png"), entry("b.png")
    scan(state, [a, b])
    intent = state.record_intent(FOLDER, "fu", "m.json", [*fingerprints([a, b]), b.fingerprint])
    assert state.orphaned_intents(FOLDER)[0][0] == intent
    assert _settled_orphan(state, intent) == (1, 1, True)
    assert state.orphaned_intents(FOLDER) == []
    _, new = scan(state, [a, b])
    assert new == [b]  # a.png got the folder's item; b.png is submitted again


def test_a_layout_7_file_keeps_its_job_intents_entries(tmp_path: Path) -> None:
    a, b = entry("a.png"), entry("b.png")
    with RunState.in_directory(tmp_path) as state:
        scan(state, [a, b])
        intent = state.record_intent(FOLDER, "fu", "m.json", fingerprints([a, b]))
    with sqlite3.connect(tmp_path / STATE_FILE) as old:  # layout 7: a row per intent's entry
        old.execute(
            "CREATE TABLE intent_entries (intent INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
            " PRIMARY KEY (intent, fingerprint)) WITHOUT ROWID"
        )
        old.execute(
            "INSERT INTO intent_entries SELECT intent, value FROM job_intents, json_each(fingerprints)"
        )
        old.execute("ALTER TABLE job_intents DROP COLUMN fingerprints")
        old.execute("PRAGMA user_version = 7")
    with RunState.in_directory(tmp_path) as state:
        assert [row[0] for row in state.orphaned_intents(FOLDER)] == [intent]
        assert _settled_orphan(state, intent) == (1, 1, True)
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (_SCHEMA_VERSION,)
        assert not db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'intent_entries'"
        ).fetchall()


def _folder_with_a_file_and_a_group(state: RunState) -> int:
    """The orphaned start of a scan of a.png and group g/, with the folder's index holding
    an item for each (the group's with no URL, as Encord lists it)."""
    a, g = entry("a.png"), group("g", 2)
    scan(state, [a, g])
    intent = state.record_intent(FOLDER, "fu", "m.json", fingerprints([a, g]))
    state.index_folder(
        "fu", [("item-a", "a.png", PREFIX + "a.png", 1.0), ("item-g", "g/", None, 2.0)]
    )
    return intent


def test_an_entry_is_matched_to_its_folder_item_by_one_index_search(state: RunState) -> None:
    intent = _folder_with_a_file_and_a_group(state)
    assert state.intent_urls_unmatched(intent, "fu") == 0
    assert state.settle_intent(intent, FOLDER, "fu", "m.json") == 2
    plan = " | ".join(
        row[3]
        for row in state._db.execute(
            f"EXPLAIN QUERY PLAN SELECT e.id FROM entries e WHERE {_MATCHING_ITEM} IS NULL",
            {"folder_uuid": "fu"},
        )
    )
    # By URL for a file (stored whole, or as the folder's URL base followed by its name), by
    # name for a group: never the folder's items one by one.
    assert "folder_items_by_url (storage_folder=? AND url=?)" in plan
    assert "folder_items_by_base_name (storage_folder=? AND name=?)" in plan
    assert "folder_items_by_name (storage_folder=? AND name=?)" in plan


def test_the_folder_index_stores_a_url_that_is_its_base_and_the_name_as_empty(
    state: RunState,
) -> None:
    # An import's items are at the bucket's URL followed by their key, their name: the index
    # stores such a URL as '' and gives it back whole; any other URL it keeps whole.
    a, g = entry("a.png"), group("g", 2)
    spaced = Entry(kind="images", title="b c.png", keys=("b c.png",), urls=(PREFIX + "b%20c.png",))
    scan(state, [a, spaced, g])
    intent = state.record_intent(FOLDER, "fu", "m.json", fingerprints([a, spaced, g]))
    elsewhere = "https://elsewhere.example/x.png"
    items = [
        ("item-a", "a.png", PREFIX + "a.png", 1.0),
        ("item-b", "b c.png", PREFIX + "b%20c.png", 2.0),
        ("item-g", "g/", None, 3.0),
        ("item-x", "x.png", elsewhere, 4.0),
    ]
    state.index_folder("fu", items)
    assert dict(state._db.execute("SELECT item_uuid, url FROM folder_items")) == {
        "item-a": "",
        "item-b": PREFIX + "b%20c.png",
        "item-g": None,
        "item-x": elsewhere,
    }
    urls = [PREFIX + "a.png", PREFIX + "b%20c.png", "(no single file: g/)", elsewhere]
    assert list(state.file_links("fu")) == urls
    assert state.intent_urls_unmatched(intent, "fu") == 0
    assert state.settle_intent(intent, FOLDER, "fu", "m.json") == 3
    state.index_folder("fu", items[::-1])  # x.png first: the base stays the first one's
    assert state._db.execute(
        "SELECT url FROM folder_items WHERE item_uuid = 'item-a'"
    ).fetchone() == ("",)
    assert list(state.file_links("fu")) == urls


def test_a_folder_index_keeps_the_url_base_another_connection_set_meanwhile(
    tmp_path: Path,
) -> None:
    # Two writers of one folder's index (a run's job results, a verify's listing): the base
    # the second one finds set is the one its '' URLs rely on, not its own.
    elsewhere = "https://elsewhere.example/"
    with RunState.in_directory(tmp_path) as state, RunState.in_directory(tmp_path) as other:

        def listing() -> Iterator[tuple[str, str, str | None, float]]:
            other.index_folder("fu", [("item-x", "x.png", elsewhere + "x.png", 1.0)])
            yield ("item-a", "a.png", PREFIX + "a.png", 2.0)  # its own base would be PREFIX
            yield ("item-y", "y.png", elsewhere + "y.png", 3.0)

        state.index_folder("fu", listing())  # reads no base, then `other` sets elsewhere's
        urls = [PREFIX + "a.png", elsewhere + "x.png", elsewhere + "y.png"]
        assert list(state.file_links("fu")) == urls
        assert dict(state._db.execute("SELECT item_uuid, url FROM folder_items")) == {
            "item-a": PREFIX + "a.png",
            "item-x": "",
            "item-y": "",
        }


def _older_folder_index(tmp_path: Path, downgrade: str) -> int:
    """The state `_folder_with_a_file_and_a_group` leaves, verified, then rewritten into an
    older layout by the SQL script `downgrade`; the intent."""
    with RunState.in_directory(tmp_path) as state:
        intent = _folder_with_a_file_and_a_group(state)
        state.record_verified(FOLDER, "fu", "ds", 1, 2, 2)
    with sqlite3.connect(tmp_path / STATE_FILE) as old:
        old.executescript(downgrade)
    return intent


def _assert_the_folder_index_reads_as_before(state: RunState, intent: int) -> None:
    assert state.folder_index_current(FOLDER, "fu") == 2
    assert list(state.file_links("fu")) == [PREFIX + "a.png", "(no single file: g/)"]
    assert state.settle_intent(intent, FOLDER, "fu", "m.json") == 2


def test_a_layout_9_file_keeps_its_folder_index(tmp_path: Path) -> None:
    intent = _older_folder_index(  # layout 9: each URL whole, no base
        tmp_path,
        (
            "UPDATE folder_items SET url = (SELECT url_base FROM storage_folders"
            " WHERE number = storage_folder) || name WHERE url = '';"
            " ALTER TABLE storage_folders DROP COLUMN url_base;"
            " ALTER TABLE storage_folders DROP COLUMN items_in_entries;"
            " DROP INDEX folder_items_by_url; DROP INDEX folder_items_by_base_name;"
            " CREATE INDEX folder_items_by_url ON folder_items (storage_folder, url);"
            " PRAGMA user_version = 9;"
        ),
    )
    with RunState.in_directory(tmp_path) as state:
        _assert_the_folder_index_reads_as_before(state, intent)
        state.index_folder("fu", [("item-a", "a.png", PREFIX + "a.png", 1.0)])
        assert state._db.execute("SELECT url FROM folder_items").fetchall() == [("",)]
        assert list(state.file_links("fu")) == [PREFIX + "a.png"]
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (_SCHEMA_VERSION,)
        (by_url,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'folder_items_by_url'")
        assert "WHERE url != ''" in by_url[0]


def test_a_layout_10_file_keeps_its_folder_index(tmp_path: Path) -> None:
    intent = _older_folder_index(  # layout 10: every item in `folder_items`
        tmp_path,
        "ALTER TABLE storage_folders DROP COLUMN items_in_entries; PRAGMA user_version = 10;",
    )
    with RunState.in_directory(tmp_path) as state:
        _assert_the_folder_index_reads_as_before(state, intent)
        assert state._db.execute("SELECT items_in_entries FROM storage_folders").fetchall() == [
            (0,)
        ]
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (_SCHEMA_VERSION,)


def test_a_layout_8_file_keeps_its_folder_index(tmp_path: Path) -> None:
    intent = _older_folder_index(  # layout 8: the folder's uuid per item
        tmp_path,
        (
            "DROP INDEX folder_items_by_url; DROP INDEX folder_items_by_name;"
            " CREATE TABLE old_items (folder_uuid TEXT NOT NULL, item_uuid TEXT NOT NULL,"
            " name TEXT NOT NULL, url TEXT, created_at REAL NOT NULL,"
            " PRIMARY KEY (folder_uuid, item_uuid));"
            " INSERT INTO old_items SELECT s.folder_uuid, f.item_uuid, f.name,"
            " CASE f.url WHEN '' THEN s.url_base || f.name ELSE f.url END, f.created_at"
            " FROM folder_items f JOIN storage_folders s ON s.number = f.storage_folder;"
            " DROP TABLE folder_items; DROP TABLE storage_folders;"
            " ALTER TABLE old_items RENAME TO folder_items;"
            " CREATE INDEX folder_items_by_url ON folder_items (folder_uuid, url);"
            " CREATE INDEX folder_items_by_name ON folder_items (folder_uuid, name);"
            " PRAGMA user_version = 8;"
        ),
    )
    with RunState.in_directory(tmp_path) as state:
        _assert_the_folder_index_reads_as_before(state, intent)
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (_SCHEMA_VERSION,)
        (table,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'folder_items'")
        assert "storage_folder INTEGER" in table[0]
        (by_name,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'folder_items_by_name'")
        assert "WHERE url IS NULL" in by_name[0]  # a folder of files leaves it empty


def _created_folder_with_results(state: RunState) -> int:
    """A folder this run created, whose one job's result gives a.png two items (the later
    one its entry's), b.png and group g/ one each, c.png none, and has x.png, no entry's;
    the scan."""
    a, b, c, g = entry("a.png"), entry("b.png"), entry("c.png"), group("g", 2)
    state.folder_created(FOLDER, "fu")
    number, _ = scan(state, [a, b, c, g])
    state.record_job(FOLDER, "fu", "job-1", "m.json", fingerprints([a, b, c, g]))
    items = [("a.png", "item-a1"), ("b.png", "item-b"), ("g/", "item-g")]
    items += [("a.png", "item-a2"), ("x.png", "item-x")]
    assert state.record_job_result("job-1", items, []) == ["c.png"]
    state.resolve_item("job-1", "c.png", None)
    state.finish_job("job-1", "DONE")
    return number


def _folder_index(state: RunState, number: int) -> tuple[int | None, list[tuple[str, str]]]:
    return state.folder_index_current(FOLDER, "fu"), list(
        state.compare_with_folder(FOLDER, number, "fu")
    )


def test_a_created_folders_index_is_its_results_with_the_entries_items_held_by_them(
    state: RunState,
) -> None:
    number = _created_folder_with_results(state)
    # Written beside the entries: only the items no entry holds.
    stored = state._db.execute("SELECT item_uuid, name, url FROM folder_items ORDER BY 1")
    assert stored.fetchall() == [("item-a1", "a.png", ""), ("item-x", "x.png", None)]
    differences = [("not in folder", "c.png"), ("duplicate", "a.png"), ("unplanned", "x.png")]
    assert _folder_index(state, number) == (5, differences)
    # Read by URL or name (here, for the file links), the held items are written out first.
    links = [PREFIX + name for name in ("a.png", "a.png", "b.png")]
    links += ["(no single file: g/)", "(no single file: x.png)"]  # no entry: no URL known
    assert list(state.file_links("fu")) == links
    assert state._db.execute("SELECT count(*) FROM folder_items").fetchone() == (5,)
    assert _folder_index(state, number) == (5, differences)


def test_a_listing_replaces_the_items_the_entries_held(state: RunState) -> None:
    number = _created_folder_with_results(state)
    state.index_folder("fu", [("item-b", "b.png", PREFIX + "b.png", 1.0)])
    state.record_verified(FOLDER, "fu", "ds", number, 1, 1)
    missing = [("not in folder", title) for title in ("a.png", "c.png", "g/")]
    assert _folder_index(state, number) == (1, missing)


def test_a_mirror_action_writes_out_the_items_the_entries_held(state: RunState) -> None:
    number = _created_folder_with_results(state)
    state.begin_action(FOLDER, "item-b", "remove", {})
    state.finish_removal(FOLDER, "ds", ["item-b"], "remove", deleted=True)  # b.png: no item
    # The index is what the results and this action left, not what the entries hold now.
    stored = state._db.execute("SELECT item_uuid FROM folder_items ORDER BY 1").fetchall()
    assert stored == [("item-a1",), ("item-a2",), ("item-b",), ("item-g",), ("item-x",)]
    state.record_verified(FOLDER, "fu", "ds", number, 0, 5)
    assert _folder_index(state, number)[0] == 5


def test_an_item_held_by_an_entry_no_longer_listed_is_unplanned(state: RunState) -> None:
    _created_folder_with_results(state)
    number, _ = scan(state, [entry("a.png"), entry("c.png"), group("g", 2)])  # b.png deleted
    differences = [("not in folder", "c.png"), ("duplicate", "a.png")]
    differences += [("unplanned", "b.png"), ("unplanned", "x.png")]
    assert _folder_index(state, number) == (5, differences)


def test_an_item_an_entry_held_before_a_later_result_stays_in_the_index(
    state: RunState,
) -> None:
    number = _created_folder_with_results(state)
    state.record_job_result("job-1", [("b.png", "item-b2")], [])  # b.png's item replaced
    stored = state._db.execute("SELECT item_uuid FROM folder_items ORDER BY 1").fetchall()
    assert stored == [("item-a1",), ("item-b",), ("item-x",)]
    assert _folder_index(state, number)[0] == 6


def test_a_look_up_by_url_finds_the_items_the_entries_held(state: RunState) -> None:
    _created_folder_with_results(state)
    state.mark_dedupe(FOLDER, fingerprints([entry("a.png")]))
    [(_, keep, extra)] = list(state.duplicates(FOLDER, "fu"))  # both of a.png's items
    assert (keep, extra) == ("item-a2", ["item-a1"])


def test_items_both_held_and_written_out_count_once(state: RunState) -> None:
    _created_folder_with_results(state)
    number, _ = scan(state, [entry("a.png"), entry("c.png"), group("g", 2)])  # b.png deleted
    expected = _folder_index(state, number)
    assert ("unplanned", "b.png") in expected[1]
    # A write-out killed before it clears the flag: b.png's and g/'s items are in both.
    storage_folder = state._storage_folder("fu")
    state._store_items(storage_folder, [("item-b", "b.png", PREFIX + "b.png", 1.0)])
    state._store_items(storage_folder, [("item-g", "g/", None, 1.0)])
    assert _folder_index(state, number) == expected
