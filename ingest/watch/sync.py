"""One batch of touched keys through the same stages as `ingest run`: classify, group,
metadata, upload, link, on just the batch's scope.

The run state's latest finished scan is the mirror of the bucket (`ingest verify` and
`retry` read it). A batch is a partial scan: its entries are recorded into the mirror's
scan, where the next full reconcile finds them, while the batch's own scan, never finished,
stands for them alone, so its upload and link stages look at the batch only.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

from ingest.cli.run import UPLOADS_DIRECTORY, PreparedUpload
from ingest.encord.link import link_uploaded
from ingest.encord.upload import Progress, submit, wait_for_jobs
from ingest.errors import UserError
from ingest.listing.touched import TouchedListing
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

    @property
    def committed(self) -> bool:
        """Every unit of the scope is in the Dataset: the batch's messages may go."""
        return not (self.failed or self.not_linked)

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "jobsStarted": self.jobs,
            "linked": self.linked,
            "failed": self.failed,
            "notLinked": self.not_linked,
            "removed": self.removed,
            "leftOut": self.left_out,
        }


def sync_touched(upload: PreparedUpload, listing: TouchedListing) -> BatchOutcome:
    context, folder = upload.context, upload.names.folder
    out = context.settings.output_dir
    report = PlanReport()
    with RunState.in_directory(out, exclusive=True) as state:
        if state.latest_scan(folder) is None:
            raise UserError(f"no finished scan for folder {folder!r} in {out}: reconcile first")
        scan = state.start_scan(folder, partial=True)
        planned = iter_entries(
            context, report, state.cached_sidecars, state.cached_dicom_headers, objects=listing
        )
        new = list(state.record_scan(folder, scan, planned))
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
        wait_for_jobs(state, upload.target, Progress(enabled=False))
        dataset = upload.client.dataset(upload.names.dataset)
        linked = link_uploaded(upload.client, state, dataset, folder, scan)
        counts = state.counts(folder, scan, dataset.dataset_hash)
        # The lead's deletions policy hooks in here, limited to `listing.scope`.
        return BatchOutcome(
            entries=counts["entries"],
            jobs=[job_id for job_id, _ in submission.jobs],
            linked=linked,
            failed=counts["failed"],
            not_linked=counts["entries"] - counts["failed"] - counts["linked"],
            removed=listing.absent,
            left_out=report.metadata_error_count,
        )
