"""Upload jobs: accepted at once, processed by background workers, observed by long polls.

A job is a list of units (a video, an image, an image group, a DICOM series entry, ...).
Each job has its own workers, so jobs run side by side. A worker validates a unit's URL,
title and metadata, assumes the integration's role, reads and sniffs each file, and stages
the unit's item(s) (a DICOM entry holding several series stages one item per series). When
every unit has finished the job settles:

- DONE: every staged item is committed (with `ignore_errors`, the failed units are simply
  left out);
- ERROR (only without `ignore_errors`): some unit failed, and nothing is committed;
- CANCELLED: pending units are dropped, units already processed are committed.

Jobs live in the store, so a restarted sandbox resumes unfinished work, and a client that
goes away does not affect its job.
"""

from __future__ import annotations

import io
import posixpath
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from sandbox.catalog import DATA_ROW, Catalog, Duplicates, Viewer, item_urls, new_id, now
from sandbox.client_metadata import schema_violations
from sandbox.errors import ApiError, ErrorKind, not_found
from sandbox.media import MediaInfo, MediaKind, describe, sniff, video_placeholder
from sandbox.readings import ReadingsHolder
from sandbox.s3_access import ObjectLocation, S3Gateway, UnitFailure, parse_object_url
from sandbox.upload_spec import GROUP_KEYS, MANIFEST_KEYS, UnitSpec, UploadSpec

JOB, UNIT = "job", "unit"
MAX_TITLE_LENGTH = 300
WORKERS_PER_JOB = 8


class Status(StrEnum):
    """A job's or a unit's state (`LongPollingStatus` on the wire)."""

    PENDING = "PENDING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


@dataclass
class JobFault:
    """How a fault rule bends the next job(s): see `sandbox.faults`."""

    pending_polls: int = 0  # report PENDING for this many polls, whatever the progress
    outcome: Status | None = None  # ERROR: the whole job fails when its units are done
    unit_delay_seconds: float = 0.0  # each unit takes at least this long


class _Cancelled(Exception):
    """The job was cancelled while this unit waited."""


@dataclass
class _Job:
    doc: dict[str, Any]
    units: list[dict[str, Any]]
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Units not yet finished; kept as a count so settling a large job stays cheap.
    pending: int = field(init=False)
    pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.pending = sum(unit["status"] == Status.PENDING for unit in self.units)

    @property
    def uuid(self) -> str:
        return str(self.doc["uuid"])

    @property
    def finished(self) -> bool:
        return bool(self.doc["status"] != Status.PENDING)


class Jobs:
    """Every job has its own workers, so jobs run side by side (no global queue)."""

    def __init__(
        self,
        catalog: Catalog,
        gateway: S3Gateway,
        readings: ReadingsHolder,
        *,
        long_poll_cap_seconds: float,
        next_job_fault: Any = lambda: None,
    ):
        self._catalog = catalog
        self._store = catalog.store
        self._gateway = gateway
        self._readings = readings
        self._long_poll_cap = long_poll_cap_seconds
        self._next_job_fault = next_job_fault
        self._changed = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._closed = False

    # Requests

    def start(
        self,
        *,
        viewer: Viewer,
        folder_uuid: str,
        integration_uuid: str,
        spec: UploadSpec,
        ignore_errors: bool,
        file_name: str | None,
        dataset_hash: str | None = None,
    ) -> str:
        self._catalog.folder(folder_uuid, viewer)
        self._catalog.integration(integration_uuid, viewer)
        cap = self._readings.current.max_job_entries
        if len(spec.units) > cap:
            raise ApiError(
                ErrorKind.PAYLOAD_TOO_LARGE,
                f"The upload lists {len(spec.units)} entries; at most {cap} are allowed per job.",
            )
        fault = self._next_job_fault() or JobFault()
        doc: dict[str, Any] = {
            "uuid": new_id(),
            "folder_uuid": folder_uuid,
            "dataset_hash": dataset_hash,
            "integration_uuid": integration_uuid,
            "owner": viewer.name,
            "ignore_errors": ignore_errors,
            "skip_duplicate_urls": spec.skip_duplicate_urls,
            "upsert_metadata": spec.upsert_metadata,
            "file_name": file_name,
            "status": Status.PENDING,
            "errors": [],
            "created_at": now(),
            "fault": asdict(fault),
        }
        units = [_new_unit(index, unit) for index, unit in enumerate(spec.units)]
        job = _Job(doc, units)
        with self._store.transaction():
            self._store.put(JOB, job.uuid, doc)
            for unit in units:
                self._put_unit(job, unit)
        with self._changed:
            self._jobs[job.uuid] = job
        self._schedule(job)
        return job.uuid

    def result(
        self,
        job_uuid: str,
        timeout_seconds: float,
        *,
        folder_uuid: str | None = None,
        dataset_hash: str | None = None,
    ) -> dict[str, Any]:
        """The job's state once it settles, or when the long poll's time is up."""
        job = self._job(job_uuid, folder_uuid, dataset_hash)
        deadline = time.monotonic() + max(0.0, min(timeout_seconds, self._long_poll_cap))
        with self._changed:
            if job.doc["fault"]["pending_polls"] > 0:
                job.doc["fault"]["pending_polls"] -= 1
                self._store.put(JOB, job.uuid, job.doc)
                return self._view(job, status=Status.PENDING)
            while not job.finished and (remaining := deadline - time.monotonic()) > 0:
                self._changed.wait(remaining)
            return self._view(job)

    def cancel(self, job_uuid: str, *, folder_uuid: str) -> int:
        job = self._job(job_uuid, folder_uuid, None)
        with self._changed:
            if job.finished:
                return 0
            job.cancelled.set()
            cancelled = 0
            for unit in job.units:
                if unit["status"] == Status.PENDING:
                    unit["status"] = Status.CANCELLED
                    self._put_unit(job, unit)
                    cancelled += 1
            job.pending -= cancelled
            self._settle_if_done(job)
            return cancelled

    def resume_unfinished(self) -> None:
        """After a restart: pick up every job that had not settled."""
        for doc in self._store.all(JOB):
            if doc["status"] == Status.PENDING:
                job = self._load(doc)
                with self._changed:
                    self._jobs[job.uuid] = job
                    self._settle_if_done(job)
                self._schedule(job)

    def shutdown(self) -> None:
        with self._changed:
            self._closed = True
            pools = [job.pool for job in self._jobs.values() if job.pool is not None]
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)

    # Processing

    def _schedule(self, job: _Job) -> None:
        pending = [unit for unit in job.units if unit["status"] == Status.PENDING]
        if not pending:
            return
        with self._changed:
            if self._closed:
                return
            job.pool = ThreadPoolExecutor(
                max_workers=min(WORKERS_PER_JOB, len(pending)),
                thread_name_prefix=f"sandbox-job-{job.uuid[:8]}",
            )
        for unit in pending:
            job.pool.submit(self._run_unit, job, unit)

    def _run_unit(self, job: _Job, unit: dict[str, Any]) -> None:
        if job.cancelled.is_set():
            return
        outcome: dict[str, Any]
        try:
            outcome = self._process(job, unit)
        except _Cancelled:
            return
        except UnitFailure as failure:
            outcome = {"status": Status.ERROR, "error": str(failure)}
        except Exception as error:  # a sandbox bug must fail the unit, not hang the job
            outcome = {"status": Status.ERROR, "error": f"internal error: {error!r}"}
        with self._changed:
            if unit["status"] != Status.PENDING:  # cancelled meanwhile
                return
            unit.update(outcome)
            job.pending -= 1
            self._put_unit(job, unit)
            self._settle_if_done(job)

    def _process(self, running: _Job, unit: dict[str, Any]) -> dict[str, Any]:
        """Stage the unit's new items, or name the existing ones it duplicates.

        A fault's unit delay is spent after the duplicate check, as reading the files is
        where the time goes: a slow job has already looked for duplicates when a faster
        job importing the same URLs settles.
        """
        job = running.doc
        key, urls = unit["manifest_key"], unit["urls"]
        expected, item_type, _ = MANIFEST_KEYS[key]
        locations = [_checked_location(url) for url in urls]
        if key in GROUP_KEYS and not unit["title"]:
            raise UnitFailure(
                "a title is required for image groups and DICOM series imported from a cloud integration."
            )
        name = unit["title"] or posixpath.basename(locations[0].key) or locations[0].key
        if len(name) > MAX_TITLE_LENGTH:
            raise UnitFailure(
                f"the title is {len(name)} characters long; at most {MAX_TITLE_LENGTH} are allowed."
            )
        violations = schema_violations(
            unit["client_metadata"], self._catalog.metadata_schema() or {}
        )
        if violations:
            raise UnitFailure(
                "clientMetadata does not conform to the organisation's metadata schema: "
                + "; ".join(violations)
            )
        skip = bool(job["skip_duplicate_urls"])
        if skip and key != "dicom_series":
            existing = self._catalog.items_with_urls(job["folder_uuid"], urls)
            if existing:
                return _outcome([], [existing[0]])
        delay = job["fault"]["unit_delay_seconds"]
        if delay and running.cancelled.wait(delay):
            raise _Cancelled
        integration = self._catalog.integration(job["integration_uuid"])
        files = [self._inspect(url, expected, unit["media_metadata"], integration) for url in urls]
        if key == "dicom_series":
            return self._dicom_items(job, unit, name, files, skip)
        if key == "image_groups" and unit["create_video"]:
            item = _new_item(job, unit, name, "imageSequence", files)
            self._write_sequence_video(item, locations[0], integration)
            return _outcome([item], [])
        return _outcome([_new_item(job, unit, name, item_type, files)], [])

    def _inspect(
        self, url: str, expected: MediaKind, provided: dict | None, integration: dict
    ) -> dict[str, Any]:
        if provided is not None:  # "used without performing any additional validation"
            return {"url": url, **_provided_file(provided)}
        head = self._gateway.read_head(url, integration)
        info = sniff(head.data)
        if info is None or info.kind is not expected:
            found = (
                info.mime_type
                if info
                else (describe(head.data) if head.data else "application/x-empty")
            )
            article = "an" if expected.value[0] in "aeiouAEIOU" else "a"
            raise UnitFailure(f"Expected {article} {expected.value}, got a file of type {found}.")
        described = {"url": url, **_sniffed_file(info, head.size)}
        if expected is MediaKind.DICOM:
            described.update(_dicom_uids(url, head.data))
        return described

    def _dicom_items(
        self, job: dict[str, Any], unit: dict[str, Any], name: str, files: list[dict], skip: bool
    ) -> dict[str, Any]:
        """One item per SeriesInstanceUID among the unit's files, in order of appearance."""
        series: dict[str, list[dict]] = {}
        for file in files:
            series.setdefault(file["dicom_series_uid"], []).append(file)
        staged, existing = [], []
        for its_files in series.values():
            urls = [file["url"] for file in its_files]
            duplicates = self._catalog.items_with_urls(job["folder_uuid"], urls) if skip else []
            if duplicates:
                existing.append(duplicates[0])
            else:
                staged.append(_new_item(job, unit, name, "dicomSeries", its_files))
        return _outcome(staged, existing)

    def _write_sequence_video(
        self, item: dict[str, Any], first_frame: ObjectLocation, integration: dict
    ) -> None:
        """An image sequence is backed by a video Encord writes into the customer's bucket."""
        directory = posixpath.dirname(first_frame.key)
        key = (
            posixpath.join(directory, f"{item['uuid']}.mp4") if directory else f"{item['uuid']}.mp4"
        )
        self._gateway.write_object(first_frame, key, video_placeholder(), integration)

    # Settling

    def _settle_if_done(self, job: _Job) -> None:
        """Called with the lock held after every unit change."""
        if job.finished or job.pending:
            return
        doc = job.doc
        failed = [unit for unit in job.units if unit["status"] == Status.ERROR]
        if job.cancelled.is_set():
            doc["status"] = Status.CANCELLED
        elif doc["fault"]["outcome"] == Status.ERROR:
            doc["status"], doc["errors"] = (
                Status.ERROR,
                ["The upload job failed (fault injected by the sandbox)."],
            )
        elif failed and not doc["ignore_errors"]:
            doc["status"] = Status.ERROR
            doc["errors"] = [f"{', '.join(unit['urls'])}: {unit['error']}" for unit in failed]
        else:
            doc["status"] = Status.DONE
        with self._store.transaction():
            if doc["status"] in (Status.DONE, Status.CANCELLED):
                self._commit(job)
            self._store.put(JOB, job.uuid, doc)
        if job.pool is not None:
            job.pool.shutdown(wait=False)
        self._changed.notify_all()

    def _commit(self, job: _Job) -> None:
        dedupe = job.doc["skip_duplicate_urls"] and self._readings.current.dedupe_concurrent_jobs
        created = []
        for unit in job.units:
            if unit["status"] != Status.DONE:
                continue
            for item in unit.pop("staged", []):
                if dedupe:  # another job may have committed this URL since the unit ran
                    existing = self._catalog.items_with_urls(item["parent"], item_urls(item))
                    if existing:
                        unit["skipped"].append(_named(existing[0]))
                        continue
                self._catalog.put_item(item)
                unit["created"].append(_named(item))
                created.append(item["uuid"])
            if job.doc["upsert_metadata"]:
                for skipped in unit["skipped"]:
                    self._upsert_metadata(skipped["item_uuid"], unit["client_metadata"])
            self._put_unit(job, unit)
        folder = self._catalog.folder(job.doc["folder_uuid"])
        if folder["synced_dataset_hash"]:  # a mirror dataset shows everything in its folder
            self._catalog.link_items(folder["synced_dataset_hash"], created, Duplicates.SKIP)
        target = job.doc["dataset_hash"]
        if target and target != folder["synced_dataset_hash"]:
            done = [named["item_uuid"] for unit in job.units for named in _unit_items(unit, True)]
            self._catalog.link_items(target, done, Duplicates.SKIP)

    def _upsert_metadata(self, item_uuid: str, client_metadata: Any) -> None:
        item = self._catalog.item(item_uuid)
        item["client_metadata"] = client_metadata
        item["last_edited_at"] = now()
        self._catalog.put_item(item)

    # Views

    def _view(self, job: _Job, status: Status | None = None) -> dict[str, Any]:
        counts = dict.fromkeys(Status, 0)
        for unit in job.units:
            counts[Status(unit["status"])] += 1
        settled_with_items = job.doc["status"] in (Status.DONE, Status.CANCELLED) and status is None
        with_skipped = self._readings.current.report_skipped_duplicates
        items = (
            [named for unit in job.units for named in _unit_items(unit, with_skipped)]
            if settled_with_items
            else []
        )
        return {
            "status": status or job.doc["status"],
            "items": items,
            "errors": list(job.doc["errors"]),
            "units_pending_count": counts[Status.PENDING],
            "units_done_count": counts[Status.DONE],
            "units_error_count": counts[Status.ERROR],
            "units_cancelled_count": counts[Status.CANCELLED],
            "unit_errors": [
                {
                    "object_urls": unit["urls"],
                    "error": f"{', '.join(unit['urls'])}: {unit['error']}",
                    "subtask_uuid": unit["subtask_uuid"],
                    "action_description": MANIFEST_KEYS[unit["manifest_key"]][2],
                }
                for unit in job.units
                if unit["status"] == Status.ERROR
            ],
            "file_name": job.doc["file_name"],
            "dataset_rows": self._dataset_rows(job) if settled_with_items else [],
        }

    def _dataset_rows(self, job: _Job) -> list[dict[str, Any]]:
        """For the legacy dataset upload: the rows in the job's dataset for its items."""
        target = job.doc["dataset_hash"]
        if not target:
            return []
        rows = []
        for unit in job.units:
            for named in _unit_items(unit, True):
                for row in self._store.find(DATA_ROW, key=named["item_uuid"], parent=target)[:1]:
                    rows.append(
                        {
                            "data_hash": row["data_hash"],
                            "title": named["name"],
                            "backing_item_uuid": named["item_uuid"],
                        }
                    )
        return rows

    # Persistence

    def _job(self, job_uuid: str, folder_uuid: str | None, dataset_hash: str | None) -> _Job:
        with self._changed:
            job = self._jobs.get(job_uuid)
        if job is None:
            doc = self._store.get(JOB, job_uuid)
            if doc is None:
                raise not_found(f"Upload job {job_uuid} does not exist.")
            job = self._load(doc)
            with self._changed:
                job = self._jobs.setdefault(job_uuid, job)
        if folder_uuid is not None and job.doc["folder_uuid"] != folder_uuid:
            raise not_found(f"Upload job {job_uuid} does not belong to folder {folder_uuid}.")
        if dataset_hash is not None and job.doc["dataset_hash"] != dataset_hash:
            raise ApiError(
                ErrorKind.NOT_FOUND,
                f"Upload job {job_uuid} does not belong to dataset {dataset_hash}.",
            )
        return job

    def _load(self, doc: dict[str, Any]) -> _Job:
        units = sorted(self._store.all(UNIT, parent=doc["uuid"]), key=lambda unit: unit["index"])
        return _Job(doc, units)

    def _put_unit(self, job: _Job, unit: dict[str, Any]) -> None:
        self._store.put(UNIT, unit["subtask_uuid"], unit, parent=job.uuid)


def _outcome(staged: list[dict[str, Any]], existing: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "status": Status.DONE,
        "staged": staged,
        "created": [],
        "skipped": [_named(item) for item in existing],
    }


def _named(item: dict[str, Any]) -> dict[str, Any]:
    return {"item_uuid": item["uuid"], "name": item["name"]}


def _unit_items(unit: dict[str, Any], with_skipped: bool) -> list[dict[str, Any]]:
    """The items a settled unit added (and, if asked, the existing ones it skipped to)."""
    if unit["status"] != Status.DONE:
        return []
    return unit.get("created", []) + (unit.get("skipped", []) if with_skipped else [])


def _dicom_uids(url: str, head: bytes) -> dict[str, Any]:
    """The UIDs in a DICOM file's header (pixel data is not read)."""
    try:
        header = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True)
        series_uid = header.get("SeriesInstanceUID")
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError) as error:
        raise UnitFailure(f"the DICOM header of {url} cannot be read: {error}") from error
    if not series_uid:
        raise UnitFailure(f"the DICOM file {url} has no SeriesInstanceUID.")
    study_uid, instance_uid = header.get("StudyInstanceUID"), header.get("SOPInstanceUID")
    return {
        "dicom_series_uid": str(series_uid),
        "dicom_study_uid": str(study_uid) if study_uid else None,
        "dicom_instance_uid": str(instance_uid) if instance_uid else None,
    }


def _new_unit(index: int, spec: UnitSpec) -> dict[str, Any]:
    return {
        "subtask_uuid": new_id(),
        "index": index,
        "manifest_key": spec.manifest_key,
        "urls": spec.urls,
        "title": spec.title,
        "client_metadata": spec.client_metadata,
        "create_video": spec.create_video,
        "media_metadata": spec.media_metadata,
        "status": Status.PENDING,
        "error": None,
    }


def _checked_location(url: str) -> ObjectLocation:
    location = parse_object_url(url)
    if len(url) > 16 * 1024:
        raise UnitFailure("the object URL is longer than 16 KB.")
    return location


def _sniffed_file(info: MediaInfo, size: int) -> dict[str, Any]:
    return {
        "file_size": size,
        "mime_type": info.mime_type,
        "width": info.width,
        "height": info.height,
        "duration": info.duration,
        "audio_sample_rate": info.sample_rate,
        "audio_bit_depth": info.bit_depth,
        "audio_codec": info.codec,
        "audio_num_channels": info.num_channels,
    }


def _provided_file(provided: dict[str, Any]) -> dict[str, Any]:
    def field_(*names: str) -> Any:
        return next((provided[name] for name in names if name in provided), None)

    return {
        "file_size": field_("fileSize", "file_size"),
        "mime_type": field_("mimeType", "mime_type"),
        "width": field_("width"),
        "height": field_("height"),
        "duration": field_("duration"),
        "fps": field_("fps"),
        "audio_sample_rate": field_("sampleRate", "sample_rate"),
        "audio_bit_depth": field_("bitDepth", "bit_depth"),
        "audio_codec": field_("codec"),
        "audio_num_channels": field_("numChannels", "num_channels"),
    }


def _new_item(
    job: dict[str, Any], unit: dict[str, Any], name: str, item_type: str, files: list[dict]
) -> dict[str, Any]:
    first = files[0]
    single = unit["manifest_key"] not in GROUP_KEYS
    stamp = now()
    item_uuid = new_id()
    return {
        "uuid": item_uuid,
        "parent": job["folder_uuid"],
        "item_type": item_type,
        "name": name,
        "client_metadata": unit["client_metadata"],
        "owner": job["owner"],
        "created_at": stamp,
        "last_edited_at": stamp,
        "integration_hash": job["integration_uuid"],
        "url": first["url"] if single else None,
        "frames": None if single else [{"uuid": new_id(), **file} for file in files],
        "file_size": sum(f["file_size"] or 0 for f in files) if not single else first["file_size"],
        "mime_type": first["mime_type"],
        "width": first["width"],
        "height": first["height"],
        "duration": first["duration"],
        "fps": first.get("fps"),
        "frame_count": None if single else len(files),
        "audio_sample_rate": first["audio_sample_rate"],
        "audio_bit_depth": first["audio_bit_depth"],
        "audio_codec": first["audio_codec"],
        "audio_num_channels": first["audio_num_channels"],
        "dicom_series_uid": first.get("dicom_series_uid"),
        "dicom_study_uid": first.get("dicom_study_uid"),
    }
