"""The v1 RPC family: `POST /public` with `{"query_type", "query_method", "values"}`.

The dataset a call concerns arrives in the `ResourceID` header (and, for setters, as
`values.uid`); payloads and responses are snake_case (encord/http/querier.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sandbox.catalog import Catalog, sql_like
from sandbox.errors import ApiError, ErrorKind, invalid
from sandbox.jobs import Jobs
from sandbox.routing import Request
from sandbox.upload_spec import parse_request

V1_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DATA_TYPES = {
    "video": "VIDEO",
    "image": "IMAGE",
    "imageGroup": "IMG_GROUP",
    "imageSequence": "IMG_GROUP",  # an image sequence is an optimised image group
    "dicomSeries": "DICOM",
    "audio": "AUDIO",
    "plainText": "PLAIN_TEXT",
    "pdf": "PDF",
    "nifti": "NIFTI",
}
STORAGE_LOCATION_AWS = 1
LEGACY_LONG_POLL_MAX_SECONDS = 60


class V1Api:
    def __init__(self, catalog: Catalog, jobs: Jobs):
        self._catalog = catalog
        self._jobs = jobs
        self._handlers = {
            ("dataset", "GET"): self._get_dataset,
            ("datasetlinkitems", "POST"): self._link_items,
            ("datarows", "GET"): self._list_data_rows,
            ("datasetdatalongpolling", "POST"): self._start_upload,
            ("datasetdatalongpolling", "GET"): self._upload_result,
        }

    def handle(self, request: Request) -> Any:
        envelope = request.json_object()
        query_type, query_method = envelope.get("query_type"), envelope.get("query_method")
        handler = self._handlers.get((query_type, query_method))
        if handler is None:
            raise ApiError(
                ErrorKind.METHOD_NOT_ALLOWED,
                f"The sandbox does not serve {query_type} {query_method}.",
            )
        values = envelope.get("values") or {}
        if request.headers.get("ResourceType") != "dataset":
            raise invalid(f"{query_type} needs ResourceType: dataset.")
        dataset_hash = request.headers.get("ResourceID") or values.get("uid")
        if not dataset_hash:
            raise invalid("No dataset given (ResourceID header).")
        return handler(request, str(dataset_hash), values.get("payload") or {})

    def _get_dataset(self, request: Request, dataset_hash: str, payload: dict) -> Any:
        dataset = self._catalog.dataset(dataset_hash)
        settings = payload.get("dataset_access_settings") or {}
        rows = self._rows(dataset_hash, settings) if settings.get("fetch_rows", True) else []
        return {
            "dataset_hash": dataset["uuid"],
            "title": dataset["title"],
            "description": dataset["description"],
            "dataset_type": "CORD_STORAGE",
            "backing_folder_uuid": dataset["backing_folder_uuid"],
            "data_rows": rows,
        }

    def _link_items(self, request: Request, dataset_hash: str, payload: dict) -> Any:
        item_uuids = payload.get("item_uuids")
        if not isinstance(item_uuids, list):
            raise invalid("item_uuids must be a list.")
        rows = self._catalog.link_items(
            dataset_hash, item_uuids, payload.get("duplicates_behavior", "SKIP")
        )
        return [self._row(row, include_metadata=False) for row in rows]

    def _list_data_rows(self, request: Request, dataset_hash: str, payload: dict) -> Any:
        self._catalog.dataset(dataset_hash)
        rows = self._rows(dataset_hash, payload.get("dataset_access_settings") or {})
        title_eq, title_like = payload.get("title_eq"), payload.get("title_like")
        before, after = _when(payload.get("created_before")), _when(payload.get("created_after"))
        types, hashes = payload.get("data_types"), payload.get("data_hashes")
        return [
            row
            for row in rows
            if (title_eq is None or row["data_title"] == title_eq)
            and (title_like is None or sql_like(row["data_title"], title_like))
            and (before is None or _when(row["created_at"]) < before)
            and (after is None or _when(row["created_at"]) >= after)
            and (types is None or row["data_type"] in types)
            and (hashes is None or row["data_hash"] in hashes)
        ]

    def _start_upload(self, request: Request, dataset_hash: str, payload: dict) -> Any:
        dataset = self._catalog.dataset(dataset_hash)
        if not payload.get("integrationId"):
            raise invalid("The sandbox imports private data only: pass an integration.")
        folder_uuid = payload.get("folderUuid") or self._upload_folder(request, dataset)
        job_uuid = self._jobs.start(
            owner=request.user.name,
            folder_uuid=folder_uuid,
            integration_uuid=payload["integrationId"],
            spec=parse_request(payload),
            ignore_errors=bool(payload.get("ignoreErrors", False)),
            file_name=payload.get("fileName"),
            dataset_hash=dataset_hash,
        )
        return {"process_hash": job_uuid}

    def _upload_result(self, request: Request, dataset_hash: str, payload: dict) -> Any:
        timeout = min(float(payload.get("timeout_seconds") or 0), LEGACY_LONG_POLL_MAX_SECONDS)
        view = self._jobs.result(
            str(payload.get("process_hash")), timeout, dataset_hash=dataset_hash
        )
        return {
            "status": view["status"],
            "data_hashes_with_titles": view["dataset_rows"],
            "errors": view["errors"],
            "data_unit_errors": view["unit_errors"],
            "units_pending_count": view["units_pending_count"],
            "units_done_count": view["units_done_count"],
            "units_error_count": view["units_error_count"],
            "units_cancelled_count": view["units_cancelled_count"],
        }

    def _upload_folder(self, request: Request, dataset: dict) -> str:
        """Where a legacy upload puts its items: the backing folder, else one made for it."""
        if dataset["backing_folder_uuid"]:
            return dataset["backing_folder_uuid"]
        if not dataset.get("upload_folder_uuid"):
            folder = self._catalog.create_folder(request.user.name, f"{dataset['title']} (uploads)")
            dataset["upload_folder_uuid"] = folder["uuid"]
            self._catalog.store.put("dataset", dataset["uuid"], dataset)
        return dataset["upload_folder_uuid"]

    def _rows(self, dataset_hash: str, settings: dict) -> list[dict]:
        include_metadata = bool(settings.get("fetch_client_metadata", False))
        return [self._row(row, include_metadata) for row in self._catalog.data_rows(dataset_hash)]

    def _row(self, row: dict, include_metadata: bool) -> dict:
        item = self._catalog.item(row["item_uuid"])
        return {
            "data_hash": row["data_hash"],
            "data_title": item["name"],
            "data_type": DATA_TYPES[item["item_type"]],
            "created_at": _v1_date(row["created_at"]),
            "last_edited_at": _v1_date(row["last_edited_at"]),
            "width": item["width"],
            "height": item["height"],
            "file_link": item["urls"][0],
            "file_size": item["file_size"],
            "file_type": item["mime_type"],
            "storage_location": STORAGE_LOCATION_AWS,
            "frames_per_second": item["fps"],
            "duration": item["duration"],
            "client_metadata": item["client_metadata"] if include_metadata else None,
            "signed_url": None,
            "is_optimised_image_group": True if item["item_type"] == "imageSequence" else None,
            "backing_item_uuid": item["uuid"],
            "images_data": None,
        }


def _v1_date(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime(V1_DATE_FORMAT)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
