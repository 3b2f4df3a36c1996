"""The steps of `ingest run` and `retry` once their inputs are checked (`ingest.cli.run`):
Encord's guide Steps 5–9, rerunnable.

`run` goes schema → scan → upload → dataset → verify (the settings' metadata schema is applied,
merge-safe, before any upload job starts); a rerun resumes from the state file in the output
directory and uploads and links only what is new; `retry` resubmits only the units that
failed.

Look before you write: every input is checked first (settings, outputs, the output
directory, the key, the integration, a schema conflict, the bucket; for a sync of a folder
mirrored before, the last three by a child process while the bucket is scanned:
`ingest.cli.run_scan`), and Encord is changed only once there is something to put in it:
the schema is applied and the Files folder found or created just before the first upload
job starts, the Dataset just before the first link.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from itertools import chain
from pathlib import Path

from encord.dataset import Dataset
from encord.storage import StorageFolder

from ingest.cli.inputs import Target, UploadInputs, existing_state, latest_scan
from ingest.cli.progress import Feedback
from ingest.cli.run_report import (
    FAILED_UNITS_FILE,
    SchemaApplied,
    report_run,
    write_failed_units,
    write_scan_report,
)
from ingest.cli.run_scan import SyncScan, scanned_entries, sync_scanned
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
from ingest.files import write_jsonl
from ingest.mirror.apply import MirrorReport, mirror, recover_provenance
from ingest.mirror.diff import Policy
from ingest.model import Entry
from ingest.plan.report import PlanReport
from ingest.plan.schema import MetadataSchema
from ingest.state import RunState

UPLOADS_DIRECTORY = "uploads"


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
    """`ingest run` of a folder without provenance in the run state (a first sync, or a lost
    run state), its inputs checked (and, with the fast listing, its listing begun)."""
    upload = prepare_upload(inputs)
    names, feedback = upload.names, upload.feedback
    mirrored = MirrorReport(Policy.from_settings(upload.context.settings))
    with RunState.in_directory(upload.context.settings.output_dir, exclusive=True) as state:
        if not state.has_mirrored(names.folder):
            existing = upload.client.find_folder(names.folder)
            if existing is not None:  # a lost (or older) run state: rebuilt from the folder
                mirrored.recovered_items = recover_provenance(upload.client, state, existing)
        if state.has_mirrored(names.folder):
            with sync_scanned(inputs, state, mirrored) as scanned:
                return sync_changes(args, upload, state, scanned)
        # A first sync: nothing to remove, so each job starts as soon as it is full.
        _record_creation(upload, state)
        report = PlanReport()
        scan, new_entries = scanned_entries(inputs, state, report, mirrored)
        submission = _submit(
            feedback.counted(new_entries, "uploading", "new entries"), state, upload
        )
        return _scan_done(args, upload, state, scan, submission, report, mirrored, None)


def sync_changes(
    args: argparse.Namespace, upload: PreparedUpload, state: RunState, scanned: SyncScan
) -> int:
    """The rest of a sync (`run_scan.sync_scanned`): the mirror step's removals and moves,
    then the uploads, then as any run. The Dataset is looked up once per run."""
    names = upload.names
    _record_creation(upload, state)
    dataset = upload.client.dataset(names.dataset)
    released = mirror(
        upload.client,
        state,
        upload.target.folder,
        dataset,
        scanned.scan,
        scanned.mirrored,
        scanned.decisions,
    )
    new = state.held_entries(names.folder, (line.rstrip("\n") for line in scanned.new))
    submission = _submit(
        upload.feedback.counted(chain(new, released), "uploading", "new entries"), state, upload
    )
    return _scan_done(
        args, upload, state, scanned.scan, submission, scanned.report, scanned.mirrored, dataset
    )


def _record_creation(upload: PreparedUpload, state: RunState) -> None:
    """A folder this run creates is empty: its jobs' results keep its index exact."""
    upload.target.when_created(
        lambda folder: state.folder_created(upload.names.folder, str(folder.uuid))
    )


def _scan_done(
    args: argparse.Namespace,
    upload: PreparedUpload,
    state: RunState,
    scan: int,
    submission: Submission,
    report: PlanReport,
    mirrored: MirrorReport,
    dataset: Dataset | None,
) -> int:
    state.finish_scan(scan)
    upload.apply_schema()  # a rerun with nothing new still brings the schema up to date
    write_scan_report(report, scan, submission.jobs, state.path.parent, upload.feedback)
    return _finish(args, upload, state, scan, submission, report, mirrored, dataset)


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
            failed_units = write_failed_units(state, names.folder, scan, out / FAILED_UNITS_FILE)
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
    return report_run(
        args,
        state,
        names.folder,
        scan,
        report=report,
        schema=upload.schema,
        jobs=submission.jobs,
        notes=submission.notes,
        deleted=deleted,
        failed_units=failed_units,
        linked=linked,
        mirrored=mirrored,
        verification=verification,
    )


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
