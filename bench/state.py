"""The run state on its own: a first run and an unchanged rerun over N synthetic entries.

Each row runs in a fresh interpreter (`python -m bench.state N`). Entries are built and
their fingerprints computed before the clock starts: what is timed is the state's own work.

- first run, as `ingest run`'s first import records it: `folder_created` (the run makes its
  Files folder, whose index then follows the jobs' results), `record_scan` of N new
  entries, per 10,000 (a job) `record_intent` then `record_job`; `finish_scan`; per job
  `record_job_result` with every item (random uuids, as Encord's) and `finish_job`;
  `unlinked_items` + `record_links` per 1,000 (a link batch); `record_mirrored`
  (mirroring's provenance).
- unchanged rerun, as `ingest run` reads it: `record_scan`, the mirror step's reads
  (`held`, `gone`, `mirrored_count`, `scanned_count`), `finish_scan`, `failed_units`,
  `unlinked_items` (none), `record_mirrored` (nothing new), `counts`. (Verification's own
  reads of the Dataset are `bench.runpath`'s.)

Times are wall and CPU (the machine is shared; CPU is the figure to compare), per stage in
`stages` (CPU µs/entry); bytes on disk are the state file and its WAL after the run; bytes
written are the process's `write` calls (`/proc/self/io` wchar: the WAL, checkpoints and
temporary files alike); `bytes_by_structure` splits the first run's bytes on disk by table and
index (SQLite's `dbstat`), the ones under 1 B/entry left out.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.measure import in_fresh_interpreter, peak_rss_mb
from ingest.model import Entry
from ingest.state import STATE_FILE, RunState

FOLDER = "bench-folder"
FOLDER_UUID = "5f0c3a52-1d3e-4b8a-9a57-0c2b7f6d8e91"
DATASET = "0b7e6c1a-9f54-4d2e-8c3b-6a1f2e9d7c40"
PREFIX = "https://bench-bucket.s3.eu-west-2.amazonaws.com/"
JOB_ENTRIES = 10_000
LINK_BATCH = 1000


def synthetic_entries(count: int) -> list[Entry]:
    entries = []
    for number in range(count):
        key = f"p{number % 16:02d}/{number // 100:07d}/camera-{number % 7}/frame-{number:08d}.jpg"
        etag = f"{number * 2654435761:032x}"[-32:]
        entries.append(
            Entry("images", key, (key,), (PREFIX + key,), (etag,), sizes=(1000 + number,))
        )
    for entry in entries:
        entry.fingerprint  # noqa: B018 (computed before timing: the plan's cost, not the state's)
    return entries


def _written() -> int:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])


def _disk_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob(f"{STATE_FILE}*"))


def _bytes_by_structure(directory: Path, count: int) -> dict[str, float]:
    """Bytes per entry of each table and index of the state file."""
    with closing(sqlite3.connect(directory / STATE_FILE)) as db:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {name: round(size / count, 1) for name, size in rows if size >= count}


class _Stages:
    """CPU seconds per named stage, summed over its calls."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str, work: Callable[..., Any], *args: Any) -> Any:
        started = time.process_time()
        result = work(*args)
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - started
        return result

    def per_entry(self, count: int) -> dict[str, float]:
        return {name: round(seconds / count * 1e6, 2) for name, seconds in self.cpu.items()}


def _first_run(state: RunState, entries: list[Entry], directory: Path, stages: _Stages) -> None:
    stages("folder_created", state.folder_created, FOLDER, FOLDER_UUID)
    scan = state.start_scan(FOLDER)
    jobs: list[list[Entry]] = []

    def submit(chunk: list[Entry]) -> None:
        fingerprints = [entry.fingerprint for entry in chunk]
        manifest = str(directory / f"manifest-{len(jobs)}.json")
        intent = stages(
            "record_intent",
            lambda: state.record_intent(FOLDER, FOLDER_UUID, manifest, fingerprints),
        )
        job_id = f"{uuid.UUID(int=len(jobs) + 1)}"
        stages(
            "record_job",
            lambda: state.record_job(FOLDER, FOLDER_UUID, job_id, manifest, fingerprints, intent),
        )
        jobs.append(chunk)

    recording = state.record_scan(FOLDER, scan, entries)
    chunk: list[Entry] = []
    while (entry := stages("record_scan", lambda: next(recording, None))) is not None:
        chunk.append(entry)
        if len(chunk) == JOB_ENTRIES:
            submit(chunk)
            chunk = []
    if chunk:
        submit(chunk)
    stages("finish_scan", lambda: state.finish_scan(scan))
    for number, part in enumerate(jobs, 1):
        job_id = f"{uuid.UUID(int=number)}"
        items = [(entry.title, str(uuid.uuid4())) for entry in part]  # Encord's answer
        stages("record_job_result", state.record_job_result, job_id, items, [])
        stages("finish_job", state.finish_job, job_id, "DONE")
    batches = state.unlinked_items(FOLDER, scan, DATASET, LINK_BATCH)
    while (batch := stages("unlinked_items", lambda: next(batches, None))) is not None:
        stages("record_links", state.record_links, DATASET, batch)
    stages("record_mirrored", lambda: state.record_mirrored(FOLDER, scan))


def first_import(state: RunState, entries: list[Entry], directory: Path) -> None:
    """The first run above, untimed: the state a first import of `entries` leaves."""
    _first_run(state, entries, directory, _Stages())


def _rerun(state: RunState, entries: list[Entry], stages: _Stages) -> None:
    scan = state.start_scan(FOLDER)
    assert not stages("record_scan", lambda: list(state.record_scan(FOLDER, scan, entries)))

    def mirror_step() -> None:
        assert state.has_mirrored(FOLDER)
        assert not state.held(FOLDER, scan, "move") and not state.held(FOLDER, scan, "content")
        assert not list(state.gone(FOLDER, scan))
        assert state.mirrored_count(FOLDER) == state.scanned_count(FOLDER, scan) == len(entries)

    stages("mirror step", mirror_step)
    stages("finish_scan", lambda: state.finish_scan(scan))
    assert not stages("failed_units", lambda: list(state.failed_units(FOLDER, scan)))
    assert not stages(
        "unlinked_items", lambda: list(state.unlinked_items(FOLDER, scan, DATASET, LINK_BATCH))
    )
    stages("record_mirrored", lambda: state.record_mirrored(FOLDER, scan))
    counts = stages("counts", lambda: state.counts(FOLDER, scan, DATASET))
    assert counts["linked"] == counts["uploaded"] == len(entries), counts


def measure(count: int) -> dict[str, Any]:
    entries = synthetic_entries(count)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as name:
        directory = Path(name)
        first_stages, rerun_stages = _Stages(), _Stages()
        written, started, cpu = _written(), time.perf_counter(), time.process_time()
        with RunState.in_directory(directory) as state:
            _first_run(state, entries, directory, first_stages)
        first_seconds = time.perf_counter() - started
        first_cpu = time.process_time() - cpu
        first_written = _written() - written
        first_disk = _disk_bytes(directory)
        by_structure = _bytes_by_structure(directory, count)

        written, started, cpu = _written(), time.perf_counter(), time.process_time()
        with RunState.in_directory(directory) as state:
            _rerun(state, entries, rerun_stages)
        rerun_seconds = time.perf_counter() - started
        rerun_cpu = time.process_time() - cpu
        rerun_written = _written() - written
        disk = _disk_bytes(directory)
    return {
        "entries": count,
        "first_us_per_entry": round(first_seconds / count * 1e6, 1),
        "first_cpu_us_per_entry": round(first_cpu / count * 1e6, 1),
        "first_bytes_written_per_entry": round(first_written / count),
        "bytes_on_disk_per_entry": round(first_disk / count),
        "rerun_us_per_entry": round(rerun_seconds / count * 1e6, 2),
        "rerun_cpu_us_per_entry": round(rerun_cpu / count * 1e6, 2),
        "rerun_mb_written": round(rerun_written / 1e6, 2),
        "bytes_on_disk_after_rerun_per_entry": round(disk / count),
        "bytes_by_structure": by_structure,
        "peak_rss_mb": round(peak_rss_mb()),
        "first_stages": first_stages.per_entry(count),
        "rerun_stages": rerun_stages.per_entry(count),
    }


def in_subprocess(count: int) -> dict[str, Any]:
    return in_fresh_interpreter("bench.state", str(count))


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
