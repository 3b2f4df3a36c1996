"""The steps of `ingest run` and `retry` once their inputs are checked (`ingest.cli.run`):
Encord's guide Steps 5–9, rerunnable.

`run` goes schema → scan → upload → dataset → verify (the settings' metadata schema is applied,
merge-safe, before any upload job starts); a rerun resumes from the state file in the output
directory and uploads and links only what is new; `retry` resubmits only the units that
failed.

Look before you write: every input is checked first (settings, outputs, the output
directory, the key, the integration, a schema conflict, the bucket), and Encord is changed
only once there is something to put in it: the schema is applied and the Files folder found
or created just before the first upload job starts, the Dataset just before the first link.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

from encord.dataset import Dataset
from encord.storage import StorageFolder

from ingest.cli.inputs import Target, UploadInputs, existing_state, latest_scan
from ingest.cli.progress import Feedback
from ingest.cli.render import print_result
from ingest.context import PlanContext
from ingest.encord.client import EncordClient, connect
from ingest.encord.link import link_uploaded
from ingest.encord.schema_sync import apply
from ingest.encord.upload import (
    Submission,
    UploadTarget,
    submit,
    wait_for_jobs,
)
from ingest.encord.verify import DIFFERENCES_FILE, Verification, verify
from ingest.errors import EXIT_DIFFERENCES, EXIT_EXACT
from ingest.files import write_atomic, write_jsonl
from ingest.mirror.apply import Classifier, MirrorReport, mirror, recover_provenance
from ingest.mirror.diff import Policy
from ingest.model import Entry
from ingest.plan.manifest import REPORT_FILE
from ingest.plan.pipeline import iter_entries
from ingest.plan.report import PlanReport
from ingest.plan.schema import MetadataSchema
from ingest.state import RunState

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


class FolderOnDemand(UploadTarget):
    """An upload target whose Files folder is found or created only when first needed (a
    job is about to start, or one must be polled), after `before_first_use` has run: a run
    that fails, or has nothing to upload, creates no folder."""

    _name: str
    _folder: StorageFolder | None
    _before_first_use: Callable[[], None]
    _created: Callable[[StorageFolder], None]

    def __init__(
        self,
        client: EncordClient,
        folder_name: str,
        integration_id: str,
        before_first_use: Callable[[], None],
    ) -> None:
        object.__setattr__(self, "client", client)
        object.__setattr__(self, "integration_id", integration_id)
        object.__setattr__(self, "_name", folder_name)
        object.__setattr__(self, "_folder", None)
        object.__setattr__(self, "_before_first_use", before_first_use)
        object.__setattr__(self, "_created", lambda folder: None)

    def when_created(self, created: Callable[[StorageFolder], None]) -> None:
        """Tell `created` of the folder if this run creates it (it is empty then)."""
        object.__setattr__(self, "_created", created)

    @property
    def folder(self) -> StorageFolder:
        folder = self._folder
        if folder is None:
            self._before_first_use()
            folder = self.client.folder(self._name, self._created)
            object.__setattr__(self, "_folder", folder)
        return folder

    @property
    def folder_name(self) -> str:
        return self._name

    @property
    def folder_if_found(self) -> StorageFolder | None:
        """The folder, if this run has found or created it already (no request)."""
        return self._folder

    def __repr__(self) -> str:  # the dataclass's would read `folder`, creating it
        return f"FolderOnDemand({self._name!r})"


class PreparedUpload:
    """Everything an upload command checked up front, and what it defers until there is
    something to upload: applying the metadata schema, and the Files folder."""

    def __init__(
        self,
        context: PlanContext,
        names: Target,
        client: EncordClient,
        integration_id: str,
        schema: tuple[Path, MetadataSchema] | None,
        feedback: Feedback,
    ) -> None:
        self.context = context
        self.names = names
        self.client = client
        self.feedback = feedback
        self._schema = schema
        self.schema: SchemaApplied | None = None
        self.target = FolderOnDemand(client, names.folder, integration_id, self.apply_schema)

    def apply_schema(self) -> None:
        """Apply the settings' metadata schema, as `ingest schema apply` does, so that Encord
        checks every upload's clientMetadata against it; once."""
        if self._schema is None or self.schema is not None:
            return
        path, declared = self._schema
        changes = apply(self.client, declared, str(path))
        self.schema = SchemaApplied(path, len(declared.keys), changes)
        self.feedback.step(self.schema.summary())


def run(args: argparse.Namespace, inputs: UploadInputs) -> int:
    """`ingest run`, its inputs checked (and, with the fast listing, its listing begun)."""
    upload = prepare_upload(inputs)
    context, names, feedback = upload.context, upload.names, upload.feedback
    out = context.settings.output_dir
    report = PlanReport()
    mirrored = MirrorReport(Policy.from_settings(context.settings))
    with RunState.in_directory(out, exclusive=True) as state:
        # A folder this run creates is empty: its jobs' results keep its index exact.
        upload.target.when_created(
            lambda folder: state.folder_created(names.folder, str(folder.uuid))
        )
        if not state.has_mirrored(names.folder):
            existing = upload.client.find_folder(names.folder)
            if existing is not None:  # a lost (or older) run state: rebuilt from the folder
                mirrored.recovered_items = recover_provenance(upload.client, state, existing)
        scan = state.start_scan(names.folder)
        # Sidecars whose ETag is unchanged since an earlier sync come from the state, not S3.
        planned = iter_entries(
            context,
            report,
            state.cached_sidecars,
            state.cached_dicom_headers,
            listed=lambda objects: feedback.counted(objects, "listing", "objects"),
        )
        # Moves and entries to reimport are held back for the mirror step (ingest/mirror).
        new_entries = Classifier(state, names.folder, scan, mirrored)(
            state.record_scan(names.folder, scan, planned)
        )
        dataset = None
        if state.has_mirrored(names.folder):  # items from earlier syncs: gone, changed, moved?
            submission, dataset = _sync(upload, state, scan, new_entries, mirrored)
        else:  # a first sync: nothing to remove, so each job starts as soon as it is full
            submission = _submit(
                feedback.counted(new_entries, "uploading", "new entries"), state, upload
            )
        state.finish_scan(scan)
        upload.apply_schema()  # a rerun with nothing new still brings the schema up to date
        report.manifests = [manifest for _, manifest in submission.jobs]
        document = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
        write_atomic(out / REPORT_FILE, document)
        feedback.step(
            f"scan {scan}: {len(submission.jobs)} upload job(s) started; "
            f"report: {out / REPORT_FILE}"
        )
        return _finish(args, upload, state, scan, submission, report, mirrored, dataset)


def _sync(
    upload: PreparedUpload,
    state: RunState,
    scan: int,
    new_entries: Iterable[Entry],
    mirrored: MirrorReport,
) -> tuple[Submission, Dataset]:
    """A sync of a folder mirrored before: the new entries wait (their fingerprints in a
    temporary file; the entries themselves are in the run state) until the listing is
    complete and the mirror step has checked its safety limits, so a refused sync changes
    nothing in Encord; then the removals and moves, then the uploads. Returns the Dataset
    too (looked up once per run)."""
    names = upload.names
    with tempfile.TemporaryFile("w+", prefix="ingest-new-") as waiting:
        waiting.writelines(f"{entry.fingerprint}\n" for entry in new_entries)
        waiting.seek(0)
        dataset = upload.client.dataset(names.dataset)
        released = mirror(upload.client, state, upload.target.folder, dataset, scan, mirrored)
        new = state.held_entries(names.folder, (line.rstrip("\n") for line in waiting))
        submission = _submit(
            upload.feedback.counted(chain(new, released), "uploading", "new entries"),
            state,
            upload,
        )
        return submission, dataset


def retry(args: argparse.Namespace, inputs: UploadInputs) -> int:
    """`ingest retry`, its inputs checked."""
    upload = prepare_upload(inputs)
    context, names = upload.context, upload.names
    out = context.settings.output_dir
    with existing_state(out, exclusive=True) as state:
        scan = latest_scan(state, names.folder, out)
        failed = state.failed_entries(names.folder, scan)
        return _finish(args, upload, state, scan, _submit(failed, state, upload), None)


def _submit(entries: Iterable[Entry], state: RunState, upload: PreparedUpload) -> Submission:
    settings = upload.context.settings
    directory = settings.output_dir / UPLOADS_DIRECTORY
    return submit(
        entries, state, upload.target, directory, settings.chunk_size, settings.max_job_entries
    )


def prepare_upload(inputs: UploadInputs) -> PreparedUpload:
    """The Encord client, the integration and the metadata schema (checked for conflicts),
    after the inputs and before anything is written, here or in Encord."""
    context, names, feedback = inputs.context, inputs.names, inputs.feedback
    client = connect(context.settings.encord_domain, inputs.key_file)
    integration_id = client.integration_id(inputs.integration, context.outputs.role_arn)
    feedback.step(f"Encord integration {inputs.integration!r}: {integration_id}")
    if inputs.schema is not None:
        path, declared = inputs.schema
        # A conflict stops the run here, before the bucket is scanned: merging into the
        # copy just read saves nothing.
        apply(client, declared, str(path), save=False)
    return PreparedUpload(context, names, client, integration_id, inputs.schema, feedback)


def _finish(
    args: argparse.Namespace,
    upload: PreparedUpload,
    state: RunState,
    scan: int,
    submission: Submission,
    report: PlanReport | None,
    mirrored: MirrorReport | None = None,
    dataset: Dataset | None = None,
) -> int:
    """Wait for the folder's jobs, link, verify, and print what happened. `dataset`: the
    Dataset, if this run has opened it already."""
    client, names, feedback = upload.client, upload.names, upload.feedback
    out = state.path.parent
    try:
        try:
            deleted = wait_for_jobs(state, upload.target, feedback.upload())
        finally:
            failed_units = _write_failed_units(state, names.folder, scan, out / FAILED_UNITS_FILE)
        if dataset is None and state.counts(names.folder, scan, None)["entries"]:
            feedback.step(f"Dataset {names.dataset!r} (created if missing)")
            dataset = client.dataset(names.dataset)
        elif dataset is None:
            dataset = client.find_dataset(names.dataset)
        if dataset is None:  # nothing importable: no Dataset to make or compare
            linked, verification = 0, _nothing_to_verify(names.dataset, out)
        else:
            linked = link_uploaded(
                client, state, dataset, names.folder, scan, feedback.counter("linking", "items")
            )
            # What each item now comes from, for the next sync's mirror step.
            state.record_mirrored(names.folder, scan)
            verification = verify(
                client,
                state,
                dataset,
                names.folder,
                scan,
                out,
                lambda rows: feedback.counted(rows, "verifying", "rows"),
                reuse_state=True,
                found_folder=upload.target.folder_if_found,
            )
    finally:
        feedback.close()
    counts = state.counts(names.folder, scan, verification.dataset_hash or None)
    summary = {
        "scan": report.to_json() if report else None,
        "schema": upload.schema.to_json() if upload.schema else None,
        "jobsStarted": [job_id for job_id, _ in submission.jobs],
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
    return EXIT_EXACT if verification.exact and not left_out else EXIT_DIFFERENCES


def _nothing_to_verify(title: str, out: Path) -> Verification:
    report = out / DIFFERENCES_FILE
    write_jsonl(report, iter(()))
    return Verification(
        dataset=title,
        dataset_hash="",
        folder="",
        rows=0,
        items=0,
        missing=0,
        extra=0,
        folder_differences={},
        sample=[],
        report=report,
        folder_uuid="",
    )


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
