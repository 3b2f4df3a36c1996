"""Stage: upload. New entries go to Encord as upload jobs of at most `maxJobEntries` entries
(and `chunkSize` URLs); the jobs are polled to the end and each entry is matched to the
storage item it became.

What this relies on from Encord, and what it does not (docs-contract.md):
- A job's `items_with_names` is only promised to hold what the job *added*: entries it leaves
  out (URLs skipped as duplicates) are matched through one paged listing of the Files folder
  (by URL for a single file, by title for a group or series), indexed in the run state.
- A request too large (HTTP 413, `PayloadTooLargeError`) is split in halves and retried.
- A job start is recorded as an intent before the request is sent: after a kill between
  Encord creating the job and its id being recorded, the rerun waits (`ORPHAN_WAIT_SECONDS`
  from the start, at most) for the orphaned job's items to appear in the folder, takes them,
  resubmits the rest, and after the upload deletes any second item made for one entry.

Job ids live in the run state, so a rerun after a kill polls the same jobs instead of
starting new ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol

from encord.exceptions import PayloadTooLargeError
from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import UploadLongPollingState
from encord.storage import StorageFolder

from ingest.encord import client as encord_client
from ingest.encord.client import EncordClient, EncordUnavailable
from ingest.encord.upload_items import upload_items
from ingest.errors import UserError
from ingest.model import Entry
from ingest.plan.manifest import ManifestWriter
from ingest.state import RunState

# Seconds one poll may wait on the server before the progress line is refreshed.
POLL_SECONDS = 10
# How long after an interrupted job start its job may still be adding items: a rerun waits
# (from the start's time) for them to appear before resubmitting, and checks for duplicates.
ORPHAN_WAIT_SECONDS = 300
ORPHAN_POLL_SECONDS = 5


@dataclass(frozen=True)
class UploadTarget:
    client: EncordClient
    folder: StorageFolder
    integration_id: str

    @property
    def folder_name(self) -> str:
        return self.folder.name


class Progress(Protocol):
    """Told of every poll of every job (the CLI draws it: `ingest.cli.progress`)."""

    def update(self, job_id: str, result: UploadLongPollingState) -> None: ...

    def close(self) -> None: ...


@dataclass
class Submission:
    """What `submit` did: the jobs it started (id, what it was given) and notes for the
    summary (requests split after HTTP 413, interrupted starts resolved)."""

    jobs: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def submit(
    entries: Iterable[Entry],
    state: RunState,
    target: UploadTarget,
    directory: Path,
    chunk_size: int,
    max_job_entries: int,
) -> Submission:
    """Start one upload job per manifest of at most `chunk_size` URLs and `max_job_entries`
    entries, each as soon as its manifest is complete. Job starts a killed run left open
    are resolved first, before any entry is read. Memory holds one job's entries."""
    submission = Submission()
    resolve_orphans(state, target, submission)
    writer: ManifestWriter | None = None
    chunk: list[Entry] = []  # the entries of the manifest being written

    for entry in entries:
        if writer is None:  # created on demand: a rerun with nothing new leaves no trace
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            writer = ManifestWriter(directory / stamp, chunk_size, max_job_entries)
        written = len(writer.paths)
        writer.add(entry)
        if len(writer.paths) > written:  # adding this entry closed the previous manifest
            _start(state, target, str(writer.paths[-1]), chunk, submission)
            chunk = []
        chunk.append(entry)
    if writer is not None:
        written = len(writer.paths)
        if len(writer.close()) > written:
            _start(state, target, str(writer.paths[-1]), chunk, submission)
    return submission


def _start(
    state: RunState,
    target: UploadTarget,
    manifest: str,
    entries: list[Entry],
    submission: Submission,
) -> None:
    """Start one job for `entries`, in halves (recursively) while Encord answers 413."""
    fingerprints = [entry.fingerprint for entry in entries]
    folder, folder_uuid = target.folder_name, str(target.folder.uuid)
    # Committed before the request: a kill from here until `record_job` leaves an intent
    # the rerun resolves (`resolve_orphans`) instead of blindly starting a second job.
    intent = state.record_intent(folder, folder_uuid, manifest, fingerprints)
    try:
        job_id = _start_once(state, target, manifest, entries, fingerprints)
    except PayloadTooLargeError:
        state.drop_intent(intent)  # refused: no job exists
        if len(entries) == 1:
            raise UserError(
                f"Encord refused the upload of {entries[0].title!r} in {manifest} as too large "
                "(HTTP 413) even alone: split that group into smaller folders"
            ) from None
        half = len(entries) // 2
        submission.notes.append(
            f"{manifest}: Encord answered HTTP 413 (request too large) for {len(entries)} "
            f"entries, so it was sent as {half} + {len(entries) - half} (lower maxJobEntries "
            "to avoid the retry)"
        )
        _start(state, target, f"{manifest} [1/2]", entries[:half], submission)
        _start(state, target, f"{manifest} [2/2]", entries[half:], submission)
        return
    state.record_job(folder, folder_uuid, job_id, manifest, fingerprints, intent)
    submission.jobs.append((job_id, manifest))


def _start_once(
    state: RunState,
    target: UploadTarget,
    manifest: str,
    entries: list[Entry],
    fingerprints: list[str],
) -> str:
    """The job's id. A start that fails transiently is retried, but its answer may have been
    lost with a job created: its entries are marked for the de-duplication after upload."""
    items = upload_items(entries)
    for delay in (*encord_client.RETRY_DELAYS_SECONDS, None):
        try:
            return target.client.start_upload(
                target.folder, target.integration_id, items, Path(manifest).name
            )
        except EncordUnavailable:
            if delay is None:
                raise
            state.mark_dedupe(target.folder_name, fingerprints)
            time.sleep(delay)
    raise AssertionError("unreachable")


def resolve_orphans(state: RunState, target: UploadTarget, submission: Submission) -> None:
    """Settle the job starts a killed run left open: the job may exist, still running.
    Wait (until `ORPHAN_WAIT_SECONDS` after the latest such start) for items for all their
    entries to appear in the folder, take what is there, leave the rest to be resubmitted;
    all of them are checked for duplicates after the upload (`wait_for_jobs`)."""
    intents = state.orphaned_intents(target.folder_name)
    if not intents:
        return
    folder_uuid = str(target.folder.uuid)
    deadline = max(started for _, _, _, started in intents) + ORPHAN_WAIT_SECONDS
    while True:
        index_folder(state, target)
        unmatched = sum(state.intent_urls_unmatched(intent, folder_uuid) for intent, *_ in intents)
        if not unmatched or time.time() >= deadline:
            break
        time.sleep(ORPHAN_POLL_SECONDS)
    for intent, _, manifest, _ in intents:
        found = state.settle_intent(intent, target.folder_name, folder_uuid, manifest)
        submission.notes.append(
            f"{manifest}: its job start was interrupted before Encord's answer was recorded; "
            f"{found} of its entries were found in the folder, the rest are resubmitted"
        )


def index_folder(state: RunState, target: UploadTarget) -> int:
    """One paged listing of the folder into the run state's index; returns the item count."""
    return target.client.index_folder(
        target.folder, partial(state.index_folder, str(target.folder.uuid))
    )


def wait_for_jobs(state: RunState, target: UploadTarget, progress: Progress) -> int:
    """Poll every unfinished job of the folder to its end and record what it imported; then
    remove duplicates the folder may hold. Returns how many duplicate items were deleted.

    Raises a UserError naming the jobs that failed as a whole, after settling all others.
    """
    failures = []
    settled: list[tuple[str, UploadLongPollingState]] = []
    try:
        for job_id in state.pending_jobs(target.folder_name):
            result = poll_until_finished(target, job_id, progress)
            record_result(state, job_id, result)
            settled.append((job_id, result))
            if result.status != LongPollingStatus.DONE:
                failures.append(f"job {job_id} {result.status.value}: {'; '.join(result.errors)}")
    finally:
        progress.close()
    deleted = settle_jobs(state, target, settled)
    if failures:
        raise UserError(f"Upload failed: {' | '.join(failures)} (rerun to resubmit its files)")
    return deleted


def poll_until_finished(
    target: UploadTarget, job_id: str, progress: Progress
) -> UploadLongPollingState:
    while True:
        result = target.client.poll_upload(target.folder, job_id, POLL_SECONDS)
        progress.update(job_id, result)
        if result.status != LongPollingStatus.PENDING:
            return result


def record_result(state: RunState, job_id: str, result: UploadLongPollingState) -> None:
    """Store a finished job's items and failed units; the job stays pending until
    `settle_jobs` has matched the rest, so a kill before that settles it again."""
    state.record_job_result(
        job_id,
        ((item.name, str(item.item_uuid)) for item in result.items_with_names),
        (
            {
                "object_urls": unit.object_urls,
                "error": unit.error,
                "subtask_uuid": str(unit.subtask_uuid),
                "action": unit.action_description,
            }
            for unit in result.unit_errors
        ),
    )


def settle_jobs(
    state: RunState, target: UploadTarget, settled: list[tuple[str, UploadLongPollingState]]
) -> int:
    """Match the entries the results left out (skipped duplicates) to the folder's items
    with one paged listing, whatever `items_with_names` held; de-duplicate; mark the jobs
    finished. Returns how many duplicate items were deleted."""
    folder = target.folder_name
    deleted = 0
    if state.unmatched_entries(folder) or state.needs_dedupe(folder):
        folder_uuid = str(target.folder.uuid)  # only now: a run with no job creates no folder
        listed_at = time.time()
        index_folder(state, target)
        for job_id, _ in settled:
            state.match_job_items(job_id, folder_uuid)
        deleted = deduplicate(state, target, listed_at)
    for job_id, result in settled:
        if result.status == LongPollingStatus.DONE:
            for title in state.record_job_result(job_id, (), ()):
                state.resolve_item(job_id, title, None)
        state.finish_job(job_id, result.status.value)
    return deleted


def deduplicate(state: RunState, target: UploadTarget, listed_at: float) -> int:
    """Delete every second item the folder index holds for one marked entry, keeping the
    linked one, else the entry's, else the oldest; return how many were deleted."""
    folder = target.folder_name
    deleted = 0
    for fingerprint, keep, extra in list(state.duplicates(folder, str(target.folder.uuid))):
        if extra:
            target.client.delete_items(target.folder, extra)
            deleted += len(extra)
        state.deduplicated(folder, fingerprint, keep)
    state.clear_dedupe(folder, listed_at - ORPHAN_WAIT_SECONDS)
    return deleted
