"""`ingest run` and `retry`: Encord's guide Steps 5–9 as rerunnable commands.

`run` goes schema → scan → upload → dataset → verify (the settings' metadata schema is applied,
merge-safe, before any upload job starts); a rerun resumes from the state file in the output
directory and uploads and links only what is new; `retry` resubmits only the units that
failed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.cli.inputs import Target, existing_state, latest_scan, target_names
from ingest.cli.render import print_result
from ingest.context import PlanContext, load_context
from ingest.encord.client import EncordClient, connect
from ingest.encord.link import link_uploaded
from ingest.encord.schema_sync import apply
from ingest.encord.upload import (
    Progress,
    Submission,
    UploadTarget,
    require_write_access,
    submit,
    wait_for_jobs,
)
from ingest.encord.verify import Verification, verify
from ingest.errors import UserError
from ingest.files import write_jsonl
from ingest.mirror.apply import Classifier, MirrorReport, mirror, recover_provenance
from ingest.mirror.diff import Policy
from ingest.plan.pipeline import iter_entries
from ingest.plan.report import PlanReport
from ingest.plan.schema import load_schema
from ingest.state import RunState

EXIT_DIFFERENCES = 1
FAILED_UNITS_FILE = "failed-units.jsonl"
UPLOADS_DIRECTORY = "uploads"


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


@dataclass(frozen=True)
class PreparedUpload:
    """Everything an upload command checked or set up before touching the run state."""

    context: PlanContext
    names: Target
    client: EncordClient
    target: UploadTarget
    schema: SchemaApplied | None


def run_command(args: argparse.Namespace) -> int:
    upload = _prepare_upload(args)
    context, names = upload.context, upload.names
    out = context.settings.output_dir
    report = PlanReport()
    mirrored = MirrorReport(Policy.from_settings(context.settings))
    with RunState.in_directory(out, exclusive=True) as state:
        if not state.has_mirrored(names.folder):
            mirrored.recovered_items = (
                recover_provenance(upload.client, state, upload.target.folder) or None
            )
        scan = state.start_scan(names.folder)
        # Sidecars whose ETag is unchanged since an earlier sync come from the state, not S3.
        planned = iter_entries(context, report, state.cached_sidecars, state.cached_dicom_headers)
        # Moves and entries to reimport are held back for the mirror step (ingest/mirror).
        new_entries = Classifier(state, names.folder, scan, mirrored)(
            state.record_scan(names.folder, scan, planned)
        )
        submission = _submit(new_entries, state, upload)
        dataset = upload.client.dataset(names.dataset)
        released = mirror(upload.client, state, upload.target.folder, dataset, scan, mirrored)
        more = _submit(released, state, upload)
        submission.jobs += more.jobs
        submission.notes += more.notes
        state.finish_scan(scan)
        report.manifests = [manifest for _, manifest in submission.jobs]
        return _finish(args, upload, state, scan, submission, report, mirrored)


def retry_command(args: argparse.Namespace) -> int:
    upload = _prepare_upload(args)
    context, names = upload.context, upload.names
    out = context.settings.output_dir
    with existing_state(out, exclusive=True) as state:
        scan = latest_scan(state, names.folder, out)
        failed = state.failed_entries(names.folder, scan)
        return _finish(args, upload, state, scan, _submit(failed, state, upload), None)


def _submit(entries, state: RunState, upload: PreparedUpload) -> Submission:
    settings = upload.context.settings
    directory = settings.output_dir / UPLOADS_DIRECTORY
    return submit(
        entries, state, upload.target, directory, settings.chunk_size, settings.max_job_entries
    )


def _prepare_upload(args: argparse.Namespace) -> PreparedUpload:
    """Inputs, the Encord client, the integration, the metadata schema and the Files folder,
    checked up front so that a bad key, an unknown integration or a schema conflict fails
    before the bucket is scanned."""
    context = load_context(args)
    names = target_names(context.settings)
    if not names.integration:
        raise UserError(
            "say which Encord integration reads the bucket: --integration TITLE "
            "(or the stack output integrationTitle, or `integration` in the ingest config)"
        )
    require_write_access(context.settings.groups, context.outputs)
    client = connect(context.settings.encord_domain, args.ssh_key_file)
    integration_id = client.integration_id(names.integration, context.outputs.role_arn)
    schema = _apply_schema(client, context.settings.metadata_schema)
    target = UploadTarget(client, client.folder(names.folder), integration_id)
    return PreparedUpload(context, names, client, target, schema)


def _apply_schema(client: EncordClient, path: Path | None) -> SchemaApplied | None:
    """Apply the settings' metadata schema, as `ingest schema apply` does, so that Encord
    checks every upload's clientMetadata against it."""
    if path is None:
        return None
    declared = load_schema(path)
    changes = apply(client, declared, str(path))
    return SchemaApplied(path, len(declared.keys), changes)


def _finish(
    args: argparse.Namespace,
    upload: PreparedUpload,
    state: RunState,
    scan: int,
    submission: Submission,
    report: PlanReport | None,
    mirrored: MirrorReport | None = None,
) -> int:
    """Wait for the folder's jobs, link, verify, and print what happened."""
    client, names = upload.client, upload.names
    out = state.path.parent
    jobs = submission.jobs
    try:
        deleted = wait_for_jobs(state, upload.target, Progress(enabled=not args.json))
    finally:
        failed_units = _write_failed_units(state, names.folder, scan, out / FAILED_UNITS_FILE)
    dataset = client.dataset(names.dataset)
    linked = link_uploaded(client, state, dataset, names.folder, scan)
    state.record_mirrored(names.folder, scan)  # what each item now comes from, for the next sync
    verification = verify(client, state, dataset, names.folder, scan, out)
    counts = state.counts(names.folder, scan, dataset.dataset_hash)
    summary = {
        "scan": report.to_json() if report else None,
        "schema": upload.schema.to_json() if upload.schema else None,
        "jobsStarted": [job_id for job_id, _ in jobs],
        "uploadNotes": submission.notes,
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
            upload.schema,
            submission,
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
    return 0 if verification.exact and not left_out else EXIT_DIFFERENCES


def _write_failed_units(state: RunState, folder: str, scan: int, path: Path) -> list[dict]:
    """Write every failed unit of the scan to the report; return the first few."""
    return write_jsonl(
        path, ({"title": title, **failure} for title, failure in state.failed_units(folder, scan))
    )


def _run_summary(
    report: PlanReport | None,
    schema: SchemaApplied | None,
    submission: Submission,
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
    jobs = submission.jobs
    lines.append(
        f"upload: {len(jobs)} job(s) started"
        + (f" ({', '.join(job_id for job_id, _ in jobs)})" if jobs else ", nothing new to upload")
        + f"; {counts['uploaded']} of {counts['entries']} entries in Encord, {counts['failed']} failed"
    )
    lines += [f"  {note}" for note in submission.notes]
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
