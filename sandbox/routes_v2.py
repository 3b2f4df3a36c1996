"""The v2 REST family, `/v2/public/<path>`: camelCase JSON in and out (encord/http/v2)."""

from __future__ import annotations

import base64
import json
from typing import Any

from sandbox.catalog import DATA_ROW, Catalog, sql_like
from sandbox.errors import invalid
from sandbox.jobs import Jobs
from sandbox.routing import Request, Router
from sandbox.upload_spec import parse_request

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
SCHEMA_TYPES = {
    "number", "boolean", "varchar", "text", "datetime", "uuid", "user", "geospatial",
    "enum", "embedding", "variant", "tombstone",
}  # fmt: skip
# The deprecated schema API names a handful of plain types; map them to and from v2 options.
LEGACY_TO_V2 = {
    "number": {"ty": "number", "format": "F64"},
    "string": {"ty": "varchar", "max_length": 8192},
    "long_string": {"ty": "text"},
    "boolean": {"ty": "boolean"},
    "datetime": {"ty": "datetime", "timezone": "UTC"},
    "geospatial": {"ty": "geospatial"},
}
V2_TO_LEGACY = {"number": "number", "varchar": "string", "text": "long_string", "boolean": "boolean",
                "datetime": "datetime", "geospatial": "geospatial", "enum": "enum",
                "embedding": "embedding", "uuid": "string"}  # fmt: skip
ITEM_TYPES = {"video", "image", "imageGroup", "imageSequence", "dicomFile", "dicomSeries", "audio",
              "plainText", "pdf", "nifti", "group", "scene", "timeseries"}  # fmt: skip


def build_router(catalog: Catalog, jobs: Jobs) -> Router:
    router = Router()

    # Organisation metadata schema

    @router.route("GET", "organisation/client-metadata-schema-v2")
    def get_schema(request: Request) -> Any:
        return catalog.metadata_schema()

    @router.route("POST", "organisation/client-metadata-schema-v2")
    def save_schema(request: Request) -> None:
        catalog.save_metadata_schema(_checked_schema(request.body))

    @router.route("GET", "organisation/client-metadata-schema")
    def get_legacy_schema(request: Request) -> Any:
        schema = catalog.metadata_schema()
        if schema is None:
            return None
        legacy = {}
        for key, option in schema.items():
            ty = option["hint"] if option["ty"] == "variant" else option["ty"]
            if ty in V2_TO_LEGACY:
                legacy[key] = V2_TO_LEGACY[ty]
        updated = catalog.metadata_schema_updated_at()
        return {
            "uuid": "00000000-0000-0000-0000-000000000001",
            "metadataSchema": legacy,
            "organisationId": 1,
            "createdAt": updated,
            "updatedAt": updated,
        }

    @router.route("POST", "organisation/client-metadata-schema")
    def save_legacy_schema(request: Request) -> None:
        body = request.json_object()
        schema = {}
        for key, ty in body.items():
            if ty not in LEGACY_TO_V2:
                raise invalid(
                    f"Key {key!r}: the legacy schema API cannot define {ty!r} (it needs values or a size); "
                    "use the v2 metadata schema."
                )
            schema[key] = dict(LEGACY_TO_V2[ty])
        catalog.save_metadata_schema(schema)

    # Cloud integrations

    @router.route("GET", "cloud-integrations")
    def list_integrations(request: Request) -> Any:
        uuids = set(request.params("filterIntegrationUuids"))
        titles = set(request.params("filterIntegrationTitles"))
        return {
            "result": [
                {"integrationUuid": x["uuid"], "title": x["title"]}
                for x in catalog.integrations()
                if (not uuids or x["uuid"] in uuids) and (not titles or x["title"] in titles)
            ]
        }

    # Storage folders

    @router.route("GET", "storage/folders")
    def list_folders(request: Request) -> Any:
        return _folder_page(request, top_level_only=not request.flag("isRecursive"))

    @router.route("GET", "storage/search/folders")
    def search_folders(request: Request) -> Any:
        return _folder_page(request, top_level_only=False)

    def _folder_page(request: Request, *, top_level_only: bool) -> Any:
        search = (request.param("search") or "").lower()
        synced = request.flag("datasetSynced", None)
        if request.params("organisationTagNamesAllof"):
            raise invalid("The sandbox has no organisation tags.")

        def wanted(folder: dict) -> bool:
            if search and search not in folder["name"].lower():
                return False
            return synced is None or bool(folder["synced_dataset_hash"]) == synced

        page_size, after, by_name, descending = _paging(request)
        scan = catalog.scan_folders(
            top_level_only=top_level_only, by_name=by_name, descending=descending, after=after
        )
        results, token = _take(scan, wanted, page_size)
        return {"results": [_folder(catalog, f) for f in results], "nextPageToken": token}

    @router.route("POST", "storage/folders")
    def create_folder(request: Request) -> Any:
        body = request.json_object()
        if body.get("cloudSyncedFolderParams"):
            raise invalid("The sandbox does not support cloud-synced folders.")
        folder = catalog.create_folder(
            request.user.name,
            body.get("name"),
            body.get("description"),
            body.get("parent"),
            _metadata_from_string(body.get("clientMetadata")),
        )
        return _folder(catalog, folder)

    @router.route("GET", "storage/folders/{folder_uuid}")
    def get_folder(request: Request, folder_uuid: str) -> Any:
        return _folder(catalog, catalog.folder(folder_uuid))

    @router.route("PATCH", "storage/folders/{folder_uuid}")
    def update_folder(request: Request, folder_uuid: str) -> Any:
        return _folder(
            catalog, catalog.update_folder(folder_uuid, _folder_changes(request.json_object()))
        )

    @router.route("PATCH", "storage/folders/patch-bulk")
    def update_folders(request: Request) -> Any:
        patches = request.json_object().get("folderPatches") or {}
        folders = [
            catalog.update_folder(uuid, _folder_changes(patch)) for uuid, patch in patches.items()
        ]
        return {"results": [_folder(catalog, f) for f in folders], "nextPageToken": None}

    # Storage items

    @router.route("GET", "storage/folders/{folder_uuid}/items")
    def list_items(request: Request, folder_uuid: str) -> Any:
        catalog.folder(folder_uuid)
        if request.flag("isRecursive"):
            raise invalid(
                "The sandbox lists the items of one folder at a time (isRecursive=False)."
            )
        search = (request.param("search") or "").lower()
        types = set(request.params("itemTypes"))
        if types - ITEM_TYPES:
            raise invalid(f"Unknown item types: {sorted(types - ITEM_TYPES)}.")
        in_dataset = request.flag("isInDataset", None)
        with_metadata = request.flag("includeClientMetadata", True)

        def wanted(item: dict) -> bool:
            if search and search not in item["name"].lower():
                return False
            if types and item["item_type"] not in types:
                return False
            return in_dataset is None or catalog.is_in_any_dataset(item["uuid"]) == in_dataset

        page_size, after, by_name, descending = _paging(request)
        scan = catalog.scan_items(folder_uuid, by_name=by_name, descending=descending, after=after)
        results, token = _take(scan, wanted, page_size)
        return {
            "results": [_item(catalog, i, with_metadata) for i in results],
            "nextPageToken": token,
        }

    @router.route("GET", "storage/items/{item_uuid}")
    def get_item(request: Request, item_uuid: str) -> Any:
        return _item(catalog, catalog.item(item_uuid), True)

    @router.route("POST", "storage/items/get-bulk")
    def get_items(request: Request) -> Any:
        uuids = request.json_object().get("itemUuids") or []
        return {
            "results": [_item(catalog, catalog.item(u), True) for u in uuids],
            "nextPageToken": None,
        }

    # Upload jobs

    @router.route("POST", "storage/folders/{folder_uuid}/data-upload-jobs")
    def start_upload(request: Request, folder_uuid: str) -> Any:
        body = request.json_object()
        if not body.get("integrationHash"):
            raise invalid("The sandbox imports private data only: pass an integration.")
        return jobs.start(
            owner=request.user.name,
            folder_uuid=folder_uuid,
            integration_uuid=body["integrationHash"],
            spec=parse_request(body),
            ignore_errors=bool(body.get("ignoreErrors", False)),
            file_name=body.get("fileName"),
        )

    @router.route("GET", "storage/folders/{folder_uuid}/data-upload-jobs/{job_uuid}")
    def upload_result(request: Request, folder_uuid: str, job_uuid: str) -> Any:
        catalog.folder(folder_uuid)
        timeout = request.integer("timeoutSeconds", 60)
        return upload_state(jobs.result(job_uuid, timeout, folder_uuid=folder_uuid))

    @router.route("POST", "storage/folders/{folder_uuid}/data-upload-jobs/{job_uuid}/cancel")
    def cancel_upload(request: Request, folder_uuid: str, job_uuid: str) -> Any:
        catalog.folder(folder_uuid)
        return {"unitsCancelledCount": jobs.cancel(job_uuid, folder_uuid=folder_uuid)}

    # Datasets

    @router.route("POST", "datasets")
    def create_dataset(request: Request) -> Any:
        body = request.json_object()
        dataset = catalog.create_dataset(
            request.user.name,
            body.get("title"),
            body.get("description"),
            bool(body.get("createBackingFolder", True)),
        )
        return {"datasetUuid": dataset["uuid"], "backingFolderUuid": dataset["backing_folder_uuid"]}

    @router.route("GET", "datasets/list")
    def list_datasets(request: Request) -> Any:
        title_eq, title_like = request.param("titleEq"), request.param("titleLike")
        return {
            "result": [
                {
                    "datasetUuid": d["uuid"],
                    "title": d["title"],
                    "description": d["description"],
                    "createdAt": d["created_at"],
                    "lastEditedAt": d["last_edited_at"],
                    "userRole": "admin",
                    "storageLocation": None,
                    "backingFolderUuid": d["backing_folder_uuid"],
                }
                for d in catalog.datasets()
                if (title_eq is None or d["title"] == title_eq)
                and (title_like is None or sql_like(d["title"], title_like))
            ]
        }

    return router


def upload_state(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": view["status"],
        "itemsWithNames": [{"itemUuid": i["item_uuid"], "name": i["name"]} for i in view["items"]],
        "errors": view["errors"],
        "unitsPendingCount": view["units_pending_count"],
        "unitsDoneCount": view["units_done_count"],
        "unitsErrorCount": view["units_error_count"],
        "unitsCancelledCount": view["units_cancelled_count"],
        "unitErrors": [
            {
                "objectUrls": e["object_urls"],
                "error": e["error"],
                "subtaskUuid": e["subtask_uuid"],
                "actionDescription": e["action_description"],
            }
            for e in view["unit_errors"]
        ],
        "fileName": view["file_name"],
    }


def _paging(request: Request) -> tuple[int, Any, bool, bool]:
    page_size = request.integer("pageSize", DEFAULT_PAGE_SIZE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid(f"pageSize must be between 1 and {MAX_PAGE_SIZE}.")
    order = request.param("order", "name")
    if order not in ("name", "createdAt"):
        raise invalid("order must be name or createdAt.")
    token = request.param("pageToken")
    return (
        page_size,
        _decode_token(token) if token else None,
        order == "name",
        bool(request.flag("desc")),
    )


def _take(scan, wanted, page_size: int) -> tuple[list[dict], str | None]:
    """Up to `page_size` wanted records, and a token if at least one more follows."""
    results: list[dict] = []
    last = None
    for cursor, record in scan:
        if not wanted(record):
            continue
        if len(results) == page_size:
            return results, _encode_token(last)
        results.append(record)
        last = cursor
    return results, None


def _encode_token(cursor: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode()


def _decode_token(token: str) -> tuple[str, int]:
    try:
        sort, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(sort), int(seq)
    except (ValueError, TypeError) as error:
        raise invalid("Invalid pageToken.") from error


def _checked_schema(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("The metadata schema must be an object of key -> option.")
    for key, option in body.items():
        if not isinstance(option, dict) or option.get("ty") not in SCHEMA_TYPES:
            raise invalid(f"Key {key!r}: unknown metadata schema option {option!r}.")
    return body


def _metadata_from_string(value: Any) -> dict | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError as error:
        raise invalid("clientMetadata must be a JSON object (as a string).") from error
    if not isinstance(parsed, dict):
        raise invalid("clientMetadata must be a JSON object.")
    return parsed


def _folder_changes(patch: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": patch.get("name"),
        "description": patch.get("description"),
        "client_metadata": _metadata_from_string(patch.get("clientMetadata")),
    }


def _folder(catalog: Catalog, folder: dict[str, Any]) -> dict[str, Any]:
    return {
        "uuid": folder["uuid"],
        "parent": folder["parent"],
        "name": folder["name"],
        "description": folder["description"],
        "clientMetadata": json.dumps(folder["client_metadata"])
        if folder["client_metadata"] is not None
        else None,
        "owner": folder["owner"],
        "createdAt": folder["created_at"],
        "lastEditedAt": folder["last_edited_at"],
        "userRole": "admin",
        "syncedDatasetHash": folder["synced_dataset_hash"],
        "pathToRoot": [
            {
                "uuid": f["uuid"],
                "parentUuid": f["parent"],
                "name": f["name"],
                "syncedDatasetHash": f["synced_dataset_hash"],
            }
            for f in catalog.path_to_root(folder)
        ],
        "folderType": "generic",
    }


def _item(catalog: Catalog, item: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    return {
        "uuid": item["uuid"],
        "parent": item["parent"],
        "itemType": item["item_type"],
        "name": item["name"],
        "description": "",
        "clientMetadata": json.dumps(item["client_metadata"] if with_metadata else {}),
        "owner": item["owner"],
        "createdAt": item["created_at"],
        "lastEditedAt": item["last_edited_at"],
        "isTombstone": False,
        "isPlaceholder": False,
        "backedDataUnitsCount": len(catalog.store.find(DATA_ROW, key=item["uuid"])),
        "storageLocation": "s3",
        "integrationHash": item["integration_hash"],
        "url": item["url"],
        "signedUrl": None,
        "fileSize": item["file_size"],
        "mimeType": item["mime_type"],
        "duration": item["duration"],
        "fps": item["fps"],
        "height": item["height"],
        "width": item["width"],
        "dicomInstanceUid": None,
        "dicomStudyUid": None,
        "dicomSeriesUid": None,
        "frameCount": item["frame_count"],
        "audioSampleRate": item["audio_sample_rate"],
        "audioBitDepth": item["audio_bit_depth"],
        "audioCodec": item["audio_codec"],
        "audioNumChannels": item["audio_num_channels"],
    }
