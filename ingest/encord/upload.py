"""Stage: upload. New entries go to Encord as one upload job per manifest chunk; the jobs are
polled to the end and each entry is matched to the storage item it became.

Job ids live in the run state, so a rerun after a kill polls the same jobs instead of
starting new ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import UploadLongPollingState
from encord.storage import StorageFolder

from ingest.encord.client import EncordClient
from ingest.errors import UserError
from ingest.model import Entry
from ingest.plan.manifest import ManifestWriter
from ingest.state import RunState

# Seconds one poll may wait on the server before the progress line is refreshed.
POLL_SECONDS = 10


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


def submit(
    entries: Iterable[Entry],
    state: RunState,
    target: UploadTarget,
    directory: Path,
    chunk_size: int,
) -> list[tuple[str, Path]]:
    """Start one upload job per manifest of at most `chunk_size` URLs, each as soon as its
    manifest is complete; return (job id, manifest). Only fingerprints are held in memory."""
    started: list[tuple[str, Path]] = []
    writer: ManifestWriter | None = None
    chunk: list[str] = []  # fingerprints of the entries in the manifest being written

    def start(manifest: Path) -> None:
        job_id = target.client.start_upload(target.folder, target.integration_id, manifest)
        # Recorded as soon as Encord answers, with the entries it covers, in one transaction:
        # a kill from here on resumes polling this very job. A kill in the short window
        # between Encord creating the job and this commit leaves the entries unsubmitted, so
        # the rerun submits them again; the manifest's `skip_duplicate_urls` makes that
        # second job import nothing twice, and `settle_job` finds the items it skipped.
        state.record_job(target.folder_name, str(target.folder.uuid), job_id, manifest, chunk)
        started.append((job_id, manifest))

    for entry in entries:
        if writer is None:  # created on demand: a rerun with nothing new leaves no trace
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            writer = ManifestWriter(directory / stamp, chunk_size)
        writer.add(entry)
        if len(writer.paths) > len(started):  # adding this entry closed the previous manifest
            start(writer.paths[-1])
            chunk = []
        chunk.append(entry.fingerprint)
    if writer is not None and len(writer.close()) > len(started):
        start(writer.paths[-1])
    return started


def wait_for_jobs(state: RunState, target: UploadTarget, progress: Progress) -> None:
    """Poll every unfinished job of the folder to its end and record what it imported.

    Raises a UserError naming the jobs that failed as a whole, after settling all others.
    """
    failures = []
    try:
        for job_id in state.pending_jobs(target.folder_name):
            result = poll_until_finished(target, job_id, progress)
            settle_job(state, target, job_id, result)
            if result.status != LongPollingStatus.DONE:
                failures.append(f"job {job_id} {result.status.value}: {'; '.join(result.errors)}")
    finally:
        progress.close()
    if failures:
        raise UserError(f"Upload failed: {' | '.join(failures)} (rerun to resubmit its files)")


def poll_until_finished(
    target: UploadTarget, job_id: str, progress: Progress
) -> UploadLongPollingState:
    while True:
        result = target.client.poll_upload(target.folder, job_id, POLL_SECONDS)
        progress.update(job_id, result)
        if result.status != LongPollingStatus.PENDING:
            return result


def settle_job(
    state: RunState, target: UploadTarget, job_id: str, result: UploadLongPollingState
) -> None:
    """Record a settled job's items and failed units, then mark it finished. An entry the
    result names neither way (a URL the folder already had, skipped as a duplicate) is
    looked up in the folder by its title, which is unique and deterministic."""
    unaccounted = state.record_job_result(
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
    if result.status == LongPollingStatus.DONE:
        for title in unaccounted:
            state.resolve_item(job_id, title, target.client.find_item_uuid(target.folder, title))
    state.finish_job(job_id, result.status.value)
