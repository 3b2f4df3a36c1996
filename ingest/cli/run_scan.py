"""The scan of `ingest run`, and a sync that the run state proves changes nothing; without the
encord SDK (`ingest.cli.run_steps` does what needs Encord).

A sync of a folder mirrored before scans the whole bucket before it changes anything in
Encord (`sync_scanned`). While it scans, a child process asks Encord what the run would ask
it first (`ingest.encord.ahead`: the integration, the schema, the folder's and the Dataset's
ids). When the scan leaves nothing to do — no new entry, no move, nothing gone or to
reimport, every upload settled, every item linked, and the last exact verification proven
to hold — the run reports that, having imported no SDK; else it goes on with the steps.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from ingest.cli.inputs import UploadInputs
from ingest.cli.run_report import (
    FAILED_UNITS_FILE,
    SchemaApplied,
    report_run,
    write_failed_units,
    write_scan_report,
)
from ingest.encord.ahead import LookupsAhead, lookups_ahead
from ingest.encord.verify import unchanged_verification
from ingest.listing.scan import ListedObject
from ingest.mirror.apply import Classifier, Decisions, MirrorReport, decide
from ingest.mirror.diff import Policy
from ingest.model import Entry
from ingest.plan.pipeline import iter_entries
from ingest.plan.report import PlanReport
from ingest.state import RunState

CHECK_EVERY = 10_000  # listed objects between looks at the child's answer


def scanned_entries(
    inputs: UploadInputs,
    state: RunState,
    report: PlanReport,
    mirrored: MirrorReport,
    check: Callable[[], None] | None = None,
) -> tuple[int, Iterator[Entry]]:
    """A new scan of the bucket into the run state: its number, and its entries not yet in
    Encord as they are (moves and entries to reimport are held back for the mirror step).
    `check`, if given, is called every `CHECK_EVERY` listed objects."""
    context, folder, feedback = inputs.context, inputs.names.folder, inputs.feedback
    scan = state.start_scan(folder)

    def listed(objects: Iterable[ListedObject]) -> Iterable[ListedObject]:
        counted = feedback.counted(objects, "listing", "objects")
        return counted if check is None else _checked(counted, check)

    # Sidecars whose ETag is unchanged since an earlier sync come from the state, not S3.
    planned = iter_entries(
        context, report, state.cached_sidecars, state.cached_dicom_headers, listed=listed
    )
    return scan, Classifier(state, folder, scan, mirrored)(state.record_scan(folder, scan, planned))


def _checked(
    objects: Iterable[ListedObject], check: Callable[[], None], every: int = CHECK_EVERY
) -> Iterator[ListedObject]:
    for number, listed in enumerate(objects, 1):
        if not number % every:
            check()
        yield listed


@dataclass(frozen=True)
class SyncScan:
    """A sync's scan, complete, and what the mirror step decided (nothing done yet)."""

    scan: int
    report: PlanReport
    mirrored: MirrorReport
    new: IO[str]  # the new entries' fingerprints, a line each (the entries are in the state)
    new_count: int
    decisions: Decisions


@contextmanager
def sync_scanned(
    inputs: UploadInputs,
    state: RunState,
    mirrored: MirrorReport,
    check: Callable[[], None] | None = None,
) -> Iterator[SyncScan]:
    """The whole scan of a folder mirrored before, and the mirror step's decisions: the new
    entries wait in a temporary file until the listing is complete and the limits are
    checked, so a refused sync changes nothing in Encord."""
    report = PlanReport()
    scan, new_entries = scanned_entries(inputs, state, report, mirrored, check)
    with tempfile.TemporaryFile("w+", prefix="ingest-new-") as new:
        count = 0
        for entry in new_entries:
            new.write(f"{entry.fingerprint}\n")
            count += 1
        new.seek(0)
        decisions = decide(state, inputs.names.folder, scan, mirrored)
        yield SyncScan(scan, report, mirrored, new, count, decisions)


def sync(args: argparse.Namespace, inputs: UploadInputs, state: RunState) -> int:
    """`ingest run` of a folder mirrored before (`state` has its items)."""
    context = inputs.context
    with lookups_ahead(
        domain=context.settings.encord_domain,
        key_file=inputs.key_file,
        integration=inputs.integration,
        role_arn=context.outputs.role_arn,
        schema=inputs.schema[0] if inputs.schema else None,
        folder=inputs.names.folder,
        dataset=inputs.names.dataset,
    ) as ahead:
        mirrored = MirrorReport(Policy.from_settings(context.settings))
        with sync_scanned(inputs, state, mirrored, ahead.raise_if_refused) as scanned:
            code = _unchanged(args, inputs, state, scanned, ahead)
            if code is not None:
                return code
            from ingest.cli.run_steps import prepare_upload, sync_changes  # the SDK: needed

            return sync_changes(args, prepare_upload(inputs), state, scanned)


def _unchanged(
    args: argparse.Namespace,
    inputs: UploadInputs,
    state: RunState,
    scanned: SyncScan,
    ahead: LookupsAhead,
) -> int | None:
    """Finish a sync that asks nothing of Encord, as the steps would (their exit code); or
    None, having changed nothing, if it asks anything."""
    names, feedback, scan = inputs.names, inputs.feedback, scanned.scan
    if scanned.new_count or not scanned.decisions.change_nothing(scanned.mirrored):
        return None
    if not state.uploads_settled(names.folder):
        return None
    answers = ahead.answers()
    if answers is None or answers.schema_changes:
        return None
    folder_uuid, dataset_hash = answers.folder_uuid, answers.dataset_hash
    if folder_uuid is None or dataset_hash is None:
        return None
    if next(state.unlinked_items(names.folder, scan, dataset_hash, 1), None) is not None:
        return None
    proven = state.proven_verification(names.folder, folder_uuid, dataset_hash, scan)
    if proven is None:
        return None
    feedback.step(f"Encord integration {inputs.integration!r}: {answers.integration_id}")
    out = state.path.parent
    state.finish_scan(scan)
    schema = None
    if inputs.schema is not None:
        path, declared = inputs.schema
        schema = SchemaApplied(path, len(declared.keys), [])
        feedback.step(schema.summary())
    write_scan_report(scanned.report, scan, [], out, feedback)
    failed_units = write_failed_units(state, names.folder, scan, out / FAILED_UNITS_FILE)
    state.record_mirrored(names.folder, scan)
    verification = unchanged_verification(
        names.dataset, dataset_hash, names.folder, folder_uuid, proven, out
    )
    feedback.close()
    return report_run(
        args,
        state,
        names.folder,
        scan,
        report=scanned.report,
        schema=schema,
        jobs=[],
        notes=[],
        deleted=0,
        failed_units=failed_units,
        linked=0,
        mirrored=scanned.mirrored,
        verification=verification,
    )
