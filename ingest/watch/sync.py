"""One batch of touched keys through the same stages as `ingest run`: classify, group,
metadata, upload, link, on just the batch's scope.

The run state's latest finished scan is the mirror of the bucket (`ingest verify` and
`retry` read it). A batch records its entries under a scan of its own, never finished, so
its upload and link stages look at the batch alone; then it moves them into the mirror's
scan, where the next full reconcile finds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ingest.cli.run import UPLOADS_DIRECTORY, PreparedUpload
from ingest.encord.link import link_uploaded
from ingest.encord.upload import Progress, submit, wait_for_jobs
from ingest.errors import UserError
from ingest.listing.touched import Scope, TouchedListing
from ingest.model import Entry
from ingest.plan.pipeline import iter_entries
from ingest.plan.report import PlanReport
from ingest.state import RunState


@dataclass(frozen=True)
class BatchOutcome:
    entries: int  # units re-planned in the scope
    jobs: list[str]
    linked: int  # items newly linked to the Dataset
    failed: int  # units Encord failed to import
    not_linked: int  # units neither failed nor linked (e.g. a job cancelled as a whole)
    removed: list[str]  # touched keys the bucket no longer holds
    left_out: int  # objects whose metadata breaks the schema (fixing them sends new events)
    unsettled: frozenset[str]  # units (`Scope.unit_of`) whose outcome is not in the Dataset
    error: str | None = None  # why some units are unsettled, when not one unit's own error

    @property
    def committed(self) -> bool:
        """Every unit of the scope is settled: all the batch's messages may go."""
        return not self.unsettled and self.error is None

    def settles(self, scope: Scope, key: str) -> bool:
        """Whether the outcome of `key`'s unit is committed (a key outside the scope has
        none to wait for): its messages may go once all their keys are settled."""
        return scope.unit_of(key) not in self.unsettled

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "jobsStarted": self.jobs,
            "linked": self.linked,
            "failed": self.failed,
            "notLinked": self.not_linked,
            "removed": self.removed,
            "leftOut": self.left_out,
            "unsettled": sorted(self.unsettled),
            **({"error": self.error} if self.error else {}),
        }


def sync_touched(upload: PreparedUpload, listing: TouchedListing) -> BatchOutcome:
    context, folder = upload.context, upload.names.folder
    out = context.settings.output_dir
    report = PlanReport()
    with RunState.in_directory(out, exclusive=True) as state:
        mirror = state.latest_scan(folder)
        if mirror is None:
            raise UserError(f"no finished scan for folder {folder!r} in {out}: reconcile first")
        scan = state.start_scan(folder)  # the batch's own, never finished
        planned: list[Entry] = []
        new = list(
            state.record_scan(
                folder,
                scan,
                _kept(
                    iter_entries(
                        context,
                        report,
                        state.cached_sidecars,
                        state.cached_dicom_headers,
                        objects=listing,
                    ),
                    planned,
                ),
            )
        )
        # Units of the scope that failed before (an earlier delivery of these events) go again.
        retried = state.failed_entries(folder, scan)
        submission = submit(
            chain(new, retried),
            state,
            upload.target,
            out / UPLOADS_DIRECTORY,
            context.settings.chunk_size,
            context.settings.max_job_entries,
        )
        error = None
        try:
            try:
                wait_for_jobs(state, upload.target, Progress(enabled=False))
            except UserError as failed_job:  # a job failed as a whole: the others still count
                error = str(failed_job)
            dataset = upload.client.dataset(upload.names.dataset)
            linked = link_uploaded(upload.client, state, dataset, folder, scan)
            counts = state.counts(folder, scan, dataset.dataset_hash)
            # Every imported entry of the scan is linked now: the rest is what stays unsettled.
            unsettled = {
                listing.scope.unit_of(key)
                for entry in planned
                if not state.is_imported(folder, entry.fingerprint)
                for key in entry.keys
            }
        finally:
            # Into the mirror whatever happened: they are what the scope holds now.
            for _ in state.record_scan(folder, mirror, planned):
                pass
        # The lead's deletions policy hooks in here, limited to `listing.scope`.
        return BatchOutcome(
            entries=counts["entries"],
            jobs=[job_id for job_id, _ in submission.jobs],
            linked=linked,
            failed=counts["failed"],
            not_linked=counts["entries"] - counts["failed"] - counts["linked"],
            removed=listing.absent,
            left_out=report.metadata_error_count,
            unsettled=frozenset(unit for unit in unsettled if unit is not None),
            error=error,
        )


def _kept(entries: Iterable[Entry], into: list[Entry]) -> Iterator[Entry]:
    for entry in entries:
        into.append(entry)
        yield entry
