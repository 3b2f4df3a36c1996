"""One batch of touched keys through the same stages as `ingest run`: classify, group,
metadata, upload, link, on just the batch's scope.

The run state's latest finished scan is the mirror of the bucket (`ingest verify` and
`retry` read it). A batch is a partial scan: its entries are recorded into the mirror's
scan, where the next full reconcile finds them, while the batch's own scan, never finished,
stands for them alone, so its upload and link stages look at the batch only. The items of
removed keys are found by their provenance and kept, unlinked or deleted under the
`deletions` policy and its limits, as `ingest run` does; their entries leave the mirror's
scan first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ingest.cli.run_steps import UPLOADS_DIRECTORY, PreparedUpload
from ingest.encord.link import link_uploaded
from ingest.encord.upload import submit, wait_for_jobs
from ingest.errors import UserError
from ingest.listing.touched import Scope, TouchedListing
from ingest.mirror.apply import MirrorReport, remove_items
from ingest.mirror.diff import MassDeleteRefused, Policy, Prior, Removals, check_limits, removal
from ingest.model import Entry
from ingest.plan.group import title_for
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
    deleted: int = 0  # items of removed keys, under the `deletions` policy
    unlinked: int = 0  # (with those `delete` left to another Dataset that uses them)
    kept: int = 0  # `deletions: keep`
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
            "deleted": self.deleted,
            "unlinked": self.unlinked,
            "kept": self.kept,
            **({"error": self.error} if self.error else {}),
        }


def sync_touched(upload: PreparedUpload, listing: TouchedListing) -> BatchOutcome:
    context, folder = upload.context, upload.names.folder
    out = context.settings.output_dir
    report = PlanReport()
    removals = MirrorReport(Policy.from_settings(context.settings))
    with RunState.in_directory(out, exclusive=True) as state:
        mirror = state.latest_scan(folder)
        if mirror is None:
            raise UserError(f"no finished scan for folder {folder!r} in {out}: reconcile first")
        scan = state.start_scan(folder, partial=True)  # recorded into the mirror's scan
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
        error = None
        unsettled: set[str | None] = set()
        gone = _gone(state, folder, listing, {entry.title for entry in planned})
        try:
            _check_limits(state, folder, mirror, gone, removals.policy)
        except MassDeleteRefused as refused:  # the rest of the batch goes on
            error, gone = str(refused), []
            unsettled.update(listing.scope.unit_of(key) for key in listing.absent)
        # Out of the mirror before Encord is changed: a rerun finds them by provenance again.
        state.leave_mirror(folder, [entry.fingerprint for _, entry in gone if entry])
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
        try:
            wait_for_jobs(state, upload.target, _NO_PROGRESS)
        except UserError as failed_job:  # a job failed as a whole: the others still count
            error = str(failed_job)
        dataset = upload.client.dataset(upload.names.dataset)
        linked = link_uploaded(upload.client, state, dataset, folder, scan)
        state.record_mirrored(folder, scan)  # what the new items come from
        counts = state.counts(folder, scan, dataset.dataset_hash)
        # Every imported entry of the scan is linked now: the rest is what stays unsettled.
        unsettled.update(
            listing.scope.unit_of(key)
            for entry in planned
            if not state.is_imported(folder, entry.fingerprint)
            for key in entry.keys
        )
        remove_items(
            upload.client,
            state,
            upload.target.folder,
            dataset,
            [prior for prior, _ in gone],
            removals,
        )
        return BatchOutcome(
            entries=counts["entries"],
            jobs=[job_id for job_id, _ in submission.jobs],
            linked=linked,
            failed=counts["failed"],
            not_linked=counts["entries"] - counts["failed"] - counts["linked"],
            removed=listing.absent,
            left_out=report.metadata_error_count,
            unsettled=frozenset(unit for unit in unsettled if unit is not None),
            deleted=removals.deleted,
            unlinked=removals.unlinked + removals.in_other_datasets,
            kept=removals.kept,
            error=error,
        )


def _gone(
    state: RunState, folder: str, listing: TouchedListing, planned_titles: set[str]
) -> list[tuple[Prior, Entry | None]]:
    """The items the batch's removed keys were imported as, unless the scope still plans
    their title (a grouped folder that lost a frame, not all of them). Looked for by title:
    a single object's, or those starting with a grouped folder's path (a DICOM series
    spanning folders is left to the next reconcile)."""
    titles, under = set(), set()
    for key in listing.absent:
        unit = listing.scope.unit_of(key)
        if unit == key:
            titles.add(title_for(key))
        elif unit is not None:
            under.add(unit or "/")
    found = state.items_from_keys(folder, listing.absent, titles, under)
    return [(prior, entry) for prior, entry in found if prior.title not in planned_titles]


def _check_limits(
    state: RunState,
    folder: str,
    mirror: int,
    gone: list[tuple[Prior, Entry | None]],
    policy: Policy,
) -> None:
    """`ingest run`'s limits on the batch's removals: against the Dataset's recorded size,
    and the last full listing's (a batch's own listing is of the touched keys alone)."""
    fates = Counter(removal(prior, policy) for prior, _ in gone)
    check_limits(
        Removals(unlink=fates["unlink"], delete=fates["delete"]),
        state.mirrored_count(folder),
        state.scanned_count(folder, mirror),
        policy,
    )


def _kept(entries: Iterable[Entry], into: list[Entry]) -> Iterator[Entry]:
    for entry in entries:
        into.append(entry)
        yield entry


class _NoProgress:
    """A batch draws no progress: its outcome is the status line (`ingest.watch.loop`)."""

    def update(self, job_id: str, result: object) -> None:
        del job_id, result

    def close(self) -> None:
        pass


_NO_PROGRESS = _NoProgress()
