"""The run state on its own: a first run and an unchanged rerun over N synthetic entries.

Each row runs in a fresh interpreter (`python -m bench.state N`). Entries are built and
their fingerprints computed before the clock starts: what is timed is the state's own work.

- first run: `record_scan` of N new entries, then what the upload commands record of them:
  `record_job` per 10,000 (a manifest), `record_job_result` with every item, `record_links`
  per 1,000 (a link batch), `finish_scan`.
- unchanged rerun: a second `record_scan` + `finish_scan` over the same entries (nothing to
  submit), then `unlinked_items` (none) and `counts`, as `ingest run` reads them.

Times are wall and CPU (the machine is shared); bytes on disk are the state file and its
WAL after the run; bytes written are the process's `write` calls (`/proc/self/io` wchar:
the WAL, checkpoints and temporary files alike).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import peak_rss_mb
from ingest.model import Entry
from ingest.state import STATE_FILE, RunState

FOLDER = "bench-folder"
PREFIX = "https://bench-bucket.s3.eu-west-2.amazonaws.com/"
JOB_ENTRIES = 10_000
LINK_BATCH = 1000


def synthetic_entries(count: int) -> list[Entry]:
    entries = []
    for number in range(count):
        key = f"p{number % 16:02d}/{number // 100:07d}/camera-{number % 7}/frame-{number:08d}.jpg"
        entries.append(
            Entry("images", key, (key,), (PREFIX + key,), (f"{number * 2654435761:032x}"[-32:],))
        )
    for entry in entries:
        entry.fingerprint  # noqa: B018 (computed before timing: the plan's cost, not the state's)
    return entries


def _written() -> int:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])


def _disk_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob(f"{STATE_FILE}*"))


def measure(count: int) -> dict[str, Any]:
    entries = synthetic_entries(count)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as name:
        directory = Path(name)
        written, started, cpu = _written(), time.perf_counter(), time.process_time()
        with RunState.in_directory(directory) as state:
            scan = state.start_scan(FOLDER)
            chunk: list[str] = []
            jobs = 0
            for entry in state.record_scan(FOLDER, scan, entries):
                chunk.append(entry.fingerprint)
                if len(chunk) == JOB_ENTRIES:
                    jobs += 1
                    state.record_job(FOLDER, "folder", f"job-{jobs}", directory / "m", chunk)
                    chunk = []
            if chunk:
                jobs += 1
                state.record_job(FOLDER, "folder", f"job-{jobs}", directory / "m", chunk)
            state.finish_scan(scan)
            for job in range(1, jobs + 1):
                part = entries[(job - 1) * JOB_ENTRIES : job * JOB_ENTRIES]
                state.record_job_result(
                    f"job-{job}", [(e.title, f"item-{e.title}") for e in part], []
                )
                state.finish_job(f"job-{job}", "DONE")
            for batch in state.unlinked_items(FOLDER, scan, "dataset", LINK_BATCH):
                state.record_links("dataset", batch)
        first_seconds = time.perf_counter() - started
        first_cpu = time.process_time() - cpu
        first_written = _written() - written
        first_disk = _disk_bytes(directory)

        written, started, cpu = _written(), time.perf_counter(), time.process_time()
        with RunState.in_directory(directory) as state:
            scan = state.start_scan(FOLDER)
            assert not any(True for _ in state.record_scan(FOLDER, scan, entries))
            state.finish_scan(scan)
            assert not list(state.unlinked_items(FOLDER, scan, "dataset", LINK_BATCH))
            assert state.counts(FOLDER, scan, "dataset")["linked"] == count
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
        "peak_rss_mb": round(peak_rss_mb()),
    }


def in_subprocess(count: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.state", str(count)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
