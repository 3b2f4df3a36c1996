"""What `ingest run` and `retry` report when they end: the summary (`--json`, or lines), the
failed units' report and the exit code; without the encord SDK, so that a sync proven
unchanged (`ingest.cli.run_scan`) reports as any other run does."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.cli.progress import Feedback
from ingest.cli.render import print_result
from ingest.encord.verify import Verification
from ingest.errors import EXIT_DIFFERENCES, EXIT_EXACT
from ingest.files import write_atomic, write_jsonl
from ingest.mirror.apply import MirrorReport
from ingest.plan.manifest import REPORT_FILE
from ingest.plan.report import PlanReport
from ingest.state import RunState

FAILED_UNITS_FILE = "failed-units.jsonl"


@dataclass(frozen=True)
class SchemaApplied:
    """What an upload command did to Encord's metadata schema before starting any job."""

    source: Path
    keys: int  # declared in the file
    changes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.source), "keys": self.keys, "changes": self.changes}

    def summary(self) -> str:
        if not self.changes:
            return f"schema: unchanged (Encord already has the {self.keys} keys of {self.source})"
        return f"schema: {self.keys} keys applied from {self.source}: {'; '.join(self.changes)}"


def write_scan_report(
    report: PlanReport, scan: int, jobs: list[tuple[str, str]], out: Path, feedback: Feedback
) -> None:
    """The scan's `report.json`, its manifests those of the jobs it started."""
    report.manifests = [manifest for _, manifest in jobs]
    document = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    write_atomic(out / REPORT_FILE, document)
    feedback.step(f"scan {scan}: {len(jobs)} upload job(s) started; report: {out / REPORT_FILE}")


def write_failed_units(state: RunState, folder: str, scan: int, path: Path) -> list[dict]:
    """Write every failed unit of the scan to the report; return the first few."""
    return write_jsonl(
        path, ({"title": title, **failure} for title, failure in state.failed_units(folder, scan))
    )


def report_run(
    args: argparse.Namespace,
    state: RunState,
    folder: str,
    scan: int,
    *,
    report: PlanReport | None,
    schema: SchemaApplied | None,
    jobs: list[tuple[str, str]],
    notes: list[str],
    deleted: int,
    failed_units: list[dict],
    linked: int,
    mirrored: MirrorReport | None,
    verification: Verification,
) -> int:
    """Print what the run did, and return its exit code: `jobs` started (id, manifest),
    `notes` on them (`encord.upload.Submission`), `deleted` duplicate items."""
    out = state.path.parent
    counts = state.counts(folder, scan, verification.dataset_hash or None)
    summary = {
        "scan": report.to_json() if report else None,
        "schema": schema.to_json() if schema else None,
        "jobsStarted": [job_id for job_id, _ in jobs],
        "uploadNotes": notes,
        "duplicatesDeleted": deleted,
        "entries": counts,
        "failedUnits": {"count": counts["failed"], "report": str(out / FAILED_UNITS_FILE)},
        "linked": linked,
        "mirror": mirrored.to_json() if mirrored else None,
        "verify": verification.to_json(),
        "state": str(state.path),
    }
    print_result(
        args,
        summary,
        lambda: _run_summary(
            report,
            schema,
            jobs,
            notes,
            deleted,
            counts,
            failed_units,
            linked,
            mirrored,
            verification,
        ),
    )
    # Objects left out for metadata that breaks the schema are not in Encord either.
    left_out = report.metadata_error_count if report else 0
    return EXIT_EXACT if verification.exact and not left_out else EXIT_DIFFERENCES


def _run_summary(
    report: PlanReport | None,
    schema: SchemaApplied | None,
    jobs: list[tuple[str, str]],
    notes: list[str],
    deleted: int,
    counts: dict[str, int],
    failed_units: list[dict],
    linked: int,
    mirrored: MirrorReport | None,
    verification: Verification,
) -> str:
    lines = [report.summary()] if report else []
    if schema:
        lines.append(schema.summary())
    lines.append(
        f"upload: {len(jobs)} job(s) started"
        + (f" ({', '.join(job_id for job_id, _ in jobs)})" if jobs else ", nothing new to upload")
        + f"; {counts['uploaded']} of {counts['entries']} entries in Encord, {counts['failed']} failed"
    )
    lines += [f"  {note}" for note in notes]
    if deleted:
        lines.append(f"  {deleted} duplicate item(s) deleted from the Files folder")
    for unit in failed_units:
        reason = (unit.get("error") or "").splitlines()[:1] or [""]
        lines.append(f"  failed: {unit['title']}: {reason[0][:200]}")
    if counts["failed"]:
        lines.append(
            f"  all failed units: {FAILED_UNITS_FILE}; resubmit them with `python -m ingest retry` (same flags)"
        )
    lines.append(f"dataset: linked {linked} new item(s)")
    if mirrored:
        lines.append(mirrored.summary())
    lines.append(verification.summary())
    if report and report.metadata_error_count:
        lines.append(
            f"left out: {report.metadata_error_count} object(s) whose metadata breaks the "
            "schema (listed above); fix them, then rerun"
        )
    return "\n".join(lines)
