"""An in-memory stand-in for `ingest.encord_client.EncordClient`, for fast tests of the
stages' bookkeeping. The end-to-end tests use the real SDK against the sandbox instead."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from encord.orm.dataset import DataUnitError, LongPollingStatus
from encord.orm.storage import StorageItemWithName, UploadLongPollingState


@dataclass
class Folder:
    name: str
    uuid: uuid.UUID = field(default_factory=uuid.uuid4)
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # url → (item uuid, name)


@dataclass
class Dataset:
    title: str
    dataset_hash: str = field(default_factory=lambda: str(uuid.uuid4()))
    rows: dict[str, Row] = field(default_factory=dict)  # item uuid → row


class Row(dict):
    """The two DataRow properties `verify` reads, over DataRow's own dict keys."""

    @property
    def title(self) -> str:
        return self["data_title"]

    @property
    def file_link(self) -> str:
        return self["file_link"]


@dataclass
class Job:
    folder: Folder
    items: list[tuple[str, str]]  # (uuid, name)
    unit_errors: list[list[str]]  # object urls per failed unit
    pending_polls: int


class FakeEncord:
    def __init__(self) -> None:
        self.folders: dict[str, Folder] = {}
        self.datasets: dict[str, Dataset] = {}
        self.jobs: dict[str, Job] = {}
        self.failing_urls: set[str] = set()
        self.pending_polls = 0
        self.started_manifests: list[Path] = []
        self.linked_batches: list[int] = []

    def integration_id(self, title: str, role_arn: str | None) -> str:
        return "4d4d7c4e-0000-4000-8000-000000000000"

    def folder(self, name: str) -> Folder:
        return self.folders.setdefault(name, Folder(name))

    def folder_by_uuid(self, folder_uuid: str) -> Folder:
        return next(f for f in self.folders.values() if str(f.uuid) == folder_uuid)

    def start_upload(self, folder: Folder, integration_id: str, manifest: Path) -> str:
        self.started_manifests.append(manifest)
        spec = json.loads(manifest.read_text())
        assert spec["skip_duplicate_urls"] is True
        job = Job(folder, [], [], self.pending_polls)
        for kind, entries in spec.items():
            if kind == "skip_duplicate_urls":
                continue
            for entry in entries:
                urls = [v for k, v in sorted(entry.items()) if k.startswith("objectUrl")]
                if urls[0] in folder.items:
                    continue  # skip_duplicate_urls: imported before, not reported again
                if self.failing_urls & set(urls):
                    job.unit_errors.append(urls)
                    continue
                item = str(uuid.uuid4())
                folder.items[urls[0]] = (item, entry["title"])
                job.items.append((item, entry["title"]))
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = job
        return job_id

    def poll_upload(self, folder: Folder, job_id: str, wait_seconds: int) -> UploadLongPollingState:
        job = self.jobs[job_id]
        done = job.pending_polls <= 0
        job.pending_polls -= 1
        return UploadLongPollingState(
            status=LongPollingStatus.DONE if done else LongPollingStatus.PENDING,
            items_with_names=[
                StorageItemWithName(item_uuid=uuid.UUID(item), name=name)
                for item, name in (job.items if done else [])
            ],
            errors=[],
            units_pending_count=0 if done else len(job.items),
            units_done_count=len(job.items) if done else 0,
            units_error_count=len(job.unit_errors) if done else 0,
            units_cancelled_count=0,
            unit_errors=[
                DataUnitError(
                    object_urls=urls,
                    error="cannot read object",
                    subtask_uuid=uuid.uuid4(),
                    action_description="import",
                )
                for urls in (job.unit_errors if done else [])
            ],
        )

    def find_item_uuid(self, folder: Folder, name: str) -> str | None:
        return next((item for item, title in folder.items.values() if title == name), None)

    def dataset(self, title: str) -> Dataset:
        return self.datasets.setdefault(title, Dataset(title))

    def link(self, dataset: Dataset, item_uuids: list[str]) -> None:
        self.linked_batches.append(len(item_uuids))
        names = {
            item: (url, name)
            for folder in self.folders.values()
            for url, (item, name) in folder.items.items()
        }
        for item in item_uuids:
            url, name = names[item]
            dataset.rows.setdefault(
                item, Row(data_title=name, file_link=url, backing_item_uuid=item)
            )

    def data_rows(self, dataset: Dataset) -> list[Row]:
        return list(dataset.rows.values())
