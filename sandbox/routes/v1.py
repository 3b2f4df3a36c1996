"""The v1 RPC family: `POST /public` with `{"query_type", "query_method", "values"}`.

The dataset a call concerns arrives in the `ResourceID` header (and, for setters, as
`values.uid`); payloads and responses are snake_case (encord/http/querier.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.catalog import Duplicates, Viewer, item_urls, sql_like
from sandbox.errors import ApiError, ErrorKind, invalid
from sandbox.routes.common import Services
from sandbox.routing import Request
from sandbox.state import Document
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


Handler = Callable[[Request, Viewer, str, dict], Any]


class V1Api:
    def __init__(self, services: Services):
        self._services = services
        self._catalog = services.catalog
        self._jobs = services.jobs
        self._handlers: dict[tuple[Any, Any], Handler] = {
            ("dataset", "GET"): self._get_dataset,
            ("datasetlinkitems", "POST"): self._link_items,
            ("datarows", "GET"): self._list_data_rows,
            ("datasetdatalongpolling", "POST"): self._start_upload,
            ("datasetdatalongpolling", "GET"): self._upload_result,
            ("video", "DELETE"): self._delete_data,
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
        dataset_hash = request.headers.get("ResourceID")
        if not dataset_hash and isinstance(values.get("uid"), str):
            dataset_hash = values["uid"]
        if not dataset_hash:
            raise invalid("No dataset given (ResourceID header).")
        viewer = self._services.viewer(request)
        return handler(request, viewer, str(dataset_hash), values)

    def _get_dataset(
        self, request: Request, viewer: Viewer, dataset_hash: str, values: dict
    ) -> Any:
        payload = values.get("payload") or {}
        dataset = self._catalog.dataset(dataset_hash, viewer)
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

    def _link_items(self, request: Request, viewer: Viewer, dataset_hash: str, values: dict) -> Any:
        payload = values.get("payload") or {}
        item_uuids = payload.get("item_uuids")
        if not isinstance(item_uuids, list):
            raise invalid("item_uuids must be a list.")
        rows = self._catalog.link_items(
            dataset_hash, item_uuids, payload.get("duplicates_behavior", Duplicates.SKIP), viewer
        )
        return self._render_rows(rows, include_metadata=False)

    def _delete_data(
        self, request: Request, viewer: Viewer, dataset_hash: str, values: dict
    ) -> Any:
        """`Dataset.delete_data`: unlink rows (the storage items stay)."""
        data_hashes = values.get("uid")
        if isinstance(data_hashes, str):
            data_hashes = [data_hashes]
        if not isinstance(data_hashes, list) or not all(isinstance(h, str) for h in data_hashes):
            raise invalid("uid must be the data hashes to delete.")
        self._catalog.delete_rows(dataset_hash, data_hashes, viewer)
        return True

    def _list_data_rows(
        self, request: Request, viewer: Viewer, dataset_hash: str, values: dict
    ) -> Any:
        payload = values.get("payload") or {}
        self._catalog.dataset(dataset_hash, viewer)
        rows = self._rows(dataset_hash, payload.get("dataset_access_settings") or {})
        title_eq, title_like = payload.get("title_eq"), payload.get("title_like")
        before, after = _when(payload.get("created_before")), _when(payload.get("created_after"))
        types, hashes = payload.get("data_types"), payload.get("data_hashes")
        return [
            row
            for row in rows
            if (title_eq is None or row["data_title"] == title_eq)
            and (title_like is None or sql_like(row["data_title"], title_like))
            and (before is None or _row_time(row) < before)
            and (after is None or _row_time(row) >= after)
            and (types is None or row["data_type"] in types)
            and (hashes is None or row["data_hash"] in hashes)
        ]

    def _start_upload(
        self, request: Request, viewer: Viewer, dataset_hash: str, values: dict
    ) -> Any:
        payload = values.get("payload") or {}
        dataset = self._catalog.dataset(dataset_hash, viewer)
        if not payload.get("integrationId"):
            raise invalid("The sandbox imports private data only: pass an integration.")
        folder_uuid = payload.get("folderUuid") or self._upload_folder(viewer, dataset)
        job_uuid = self._jobs.start(
            viewer=viewer,
            folder_uuid=folder_uuid,
            integration_uuid=str(payload["integrationId"]),
            spec=parse_request(payload),
            ignore_errors=bool(payload.get("ignoreErrors", False)),
            file_name=payload.get("fileName"),
            dataset_hash=dataset_hash,
        )
        return {"process_hash": job_uuid}

    def _upload_result(
        self, request: Request, viewer: Viewer, dataset_hash: str, values: dict
    ) -> Any:
        payload = values.get("payload") or {}
        self._catalog.dataset(dataset_hash, viewer)
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

    def _upload_folder(self, viewer: Viewer, dataset: dict) -> str:
        """Where a legacy upload puts its items: the backing folder, else one made for it."""
        if dataset["backing_folder_uuid"]:
            return dataset["backing_folder_uuid"]
        if not dataset.get("upload_folder_uuid"):
            folder = self._catalog.create_folder(viewer.name, f"{dataset['title']} (uploads)")
            dataset["upload_folder_uuid"] = folder["uuid"]
            self._catalog.store.put("dataset", dataset["uuid"], dataset)
        return dataset["upload_folder_uuid"]

    def _rows(self, dataset_hash: str, settings: dict) -> list[dict]:
        include_metadata = bool(settings.get("fetch_client_metadata", False))
        return self._render_rows(self._catalog.data_rows(dataset_hash), include_metadata)

    def _render_rows(self, rows: list[Document], include_metadata: bool) -> list[dict]:
        """Rows with their items fetched in batches, not one query per row."""
        items = self._catalog.items(sorted({row["item_uuid"] for row in rows}))
        return [_row(row, items[row["item_uuid"]], include_metadata) for row in rows]


def _row(row: Document, item: Document, include_metadata: bool) -> dict:
    return {
        "data_hash": row["data_hash"],
        "data_title": item["name"],
        "data_type": DATA_TYPES[item["item_type"]],
        "created_at": _v1_date(row["created_at"]),
        "last_edited_at": _v1_date(row["last_edited_at"]),
        "width": item["width"],
        "height": item["height"],
        # orm/dataset.py: "file_link" is None for DICOM; groups show their first frame.
        "file_link": None if item["item_type"] == "dicomSeries" else item_urls(item)[0],
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


def _row_time(row: dict) -> datetime:
    return datetime.strptime(row["created_at"], V1_DATE_FORMAT).replace(tzinfo=UTC)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
