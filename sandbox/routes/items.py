"""`storage/folders/{uuid}/items...` and `storage/items...`: list, get, summarise, update,
delete and re-point storage items, and list the frames of a group (`child-items`)."""

from __future__ import annotations

import json
import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit

from sandbox.catalog import Catalog, Viewer
from sandbox.client_metadata import schema_violations
from sandbox.errors import ApiError, invalid
from sandbox.jobs import MAX_TITLE_LENGTH
from sandbox.routes.common import Services, metadata_from_string, paging, take
from sandbox.routing import Request, Router
from sandbox.s3_access import S3Gateway, UnitFailure
from sandbox.state import Document

ITEM_TYPES = {"video", "image", "imageGroup", "imageSequence", "dicomFile", "dicomSeries", "audio",
              "plainText", "pdf", "nifti", "group", "scene", "timeseries"}  # fmt: skip
FRAME_TYPES = {"dicomSeries": "dicomFile"}  # frames of other groups are images


def register(router: Router, services: Services, gateway: S3Gateway) -> None:
    catalog = services.catalog

    @router.route("GET", "storage/folders/{folder_uuid}/items")
    def list_items(request: Request, folder_uuid: str) -> Any:
        catalog.folder(folder_uuid, services.viewer(request))
        if request.flag("isRecursive"):
            raise invalid(
                "The sandbox lists the items of one folder at a time (isRecursive=False)."
            )
        search = (request.param("search") or "").lower()
        types = set(request.params("itemTypes"))
        if types - ITEM_TYPES:
            raise invalid(f"Unknown item types: {sorted(types - ITEM_TYPES)}.")
        in_dataset = request.flag("isInDataset", None)
        with_metadata = bool(request.flag("includeClientMetadata", True))

        def wanted(item: Document) -> bool:
            if search and search not in item["name"].lower():
                return False
            if types and item["item_type"] not in types:
                return False
            return in_dataset is None or bool(catalog.row_count_of_item(item["uuid"])) == in_dataset

        page = paging(request)
        scan = catalog.scan_items(
            folder_uuid, by_name=page.by_name, descending=page.descending, after=page.after
        )
        results, token = take(scan, wanted, page.page_size)
        return {
            "results": [render_item(catalog, i, with_metadata) for i in results],
            "nextPageToken": token,
        }

    @router.route("GET", "storage/items/{item_uuid}")
    def get_item(request: Request, item_uuid: str) -> Any:
        return render_item(catalog, catalog.item(item_uuid, services.viewer(request)), True)

    @router.route("POST", "storage/items/get-bulk")
    def get_items(request: Request) -> Any:
        viewer = services.viewer(request)
        uuids = request.json_object().get("itemUuids") or []
        return {
            "results": [render_item(catalog, catalog.item(u, viewer), True) for u in uuids],
            "nextPageToken": None,
        }

    @router.route("GET", "storage/folders/{folder_uuid}/items/{item_uuid}/child-items")
    def child_items(request: Request, folder_uuid: str, item_uuid: str) -> Any:
        item = _item_in(catalog, folder_uuid, item_uuid, services.viewer(request))
        return {"results": render_frames(item), "nextPageToken": None}

    @router.route("GET", "storage/folders/{folder_uuid}/items/{item_uuid}/summary")
    def summary(request: Request, folder_uuid: str, item_uuid: str) -> Any:
        viewer = services.viewer(request)
        item = _item_in(catalog, folder_uuid, item_uuid, viewer)
        by_dataset: dict[str, list[Document]] = {}
        for row in catalog.rows_of_item(item["uuid"]):
            by_dataset.setdefault(row["dataset_hash"], []).append(row)
        accessible = []
        for dataset_hash, rows in by_dataset.items():
            try:
                dataset = catalog.dataset(dataset_hash, viewer)
            except ApiError:  # not visible to this user: counted, not listed
                continue
            accessible.append(
                {
                    "datasetHash": dataset_hash,
                    "backingFolderUuid": dataset["backing_folder_uuid"],
                    "title": dataset["title"],
                    "dataHashes": [row["data_hash"] for row in rows],
                    "dataUnitsCreatedAt": min(row["created_at"] for row in rows),
                }
            )
        return {
            "frameInGroups": 0,
            "accessibleGroupItems": [],
            "usedInDatasets": len(by_dataset),
            "accessibleDatasets": accessible,
            "groupLayout": None,
        }

    @router.route("PATCH", "storage/items/patch-bulk")
    def update_items(request: Request) -> Any:
        viewer = services.viewer(request)
        patches = request.json_object().get("itemPatches") or {}
        if not isinstance(patches, dict):
            raise invalid("itemPatches maps item uuids to patches.")
        changes = {uuid: _item_changes(catalog, patch) for uuid, patch in patches.items()}
        items = [
            catalog.update_item(uuid, change, viewer, None) for uuid, change in changes.items()
        ]
        return {"results": [render_item(catalog, i, True) for i in items], "nextPageToken": None}

    @router.route("PATCH", "storage/folders/{folder_uuid}/items/{item_uuid}")
    def update_item(request: Request, folder_uuid: str, item_uuid: str) -> Any:
        viewer = services.viewer(request)
        catalog.folder(folder_uuid, viewer)
        changes = _item_changes(catalog, request.json_object())
        return render_item(
            catalog, catalog.update_item(item_uuid, changes, viewer, folder_uuid), True
        )

    @router.route("POST", "storage/folders/{folder_uuid}/items/delete")
    def delete_items(request: Request, folder_uuid: str) -> Any:
        body = request.json_object()
        uuids = body.get("childUuids")
        if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
            raise invalid("childUuids must be a list of item uuids.")
        removed = catalog.delete_items(
            folder_uuid,
            uuids,
            services.viewer(request),
            services.readings.current.linked_item_deletion,
        )
        return {"removedItemsCount": removed, "removedFoldersCount": 0}

    @router.route("POST", "storage/items/migrate-storage")
    def migrate_storage(request: Request) -> None:
        body = request.json_object()
        viewer = services.viewer(request)
        to_integration = body.get("toIntegrationHash")
        changes = catalog.migrate(
            viewer,
            items_map=_string_map(body.get("itemsMap")),
            urls_map=_string_map(body.get("urlsMap")),
            from_integration=body.get("fromIntegrationHash"),
            to_integration=to_integration,
            skip_missing=bool(body.get("skipMissing", False)),
        )
        if body.get("validateAccess", False):
            for item, urls in changes:
                integration = catalog.integration(to_integration or item["integration_hash"])
                for url in urls:
                    try:
                        gateway.read_head(url, integration)
                    except UnitFailure as failure:
                        raise invalid(f"{url}: {failure} Nothing was changed.") from failure
        catalog.commit_migration(changes, to_integration)


def _item_in(catalog: Catalog, folder_uuid: str, item_uuid: str, viewer: Viewer) -> Document:
    catalog.folder(folder_uuid, viewer)
    item = catalog.item(item_uuid, viewer)
    if item["parent"] != folder_uuid:
        raise invalid(f"Item {item_uuid} is not in folder {folder_uuid}.")
    return item


# Time-series and scene settings belong to item types the sandbox does not serve.
UNSERVED_PATCH_FIELDS = ("timeseriesSettings", "sceneViewSettings", "sceneLayout")


def _item_changes(catalog: Catalog, patch: Any) -> dict[str, Any]:
    """A `PatchItemPayload` checked as an upload checks a unit: name length, metadata schema."""
    if not isinstance(patch, dict):
        raise invalid("An item patch is a JSON object.")
    unserved = [key for key in UNSERVED_PATCH_FIELDS if patch.get(key) is not None]
    if unserved:
        raise invalid(f"The sandbox has no time-series or scene items: {', '.join(unserved)}.")
    name = patch.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise invalid("An item's name must be a non-empty string.")
    if name is not None and len(name) > MAX_TITLE_LENGTH:
        raise invalid(f"The name is {len(name)} characters long; at most {MAX_TITLE_LENGTH}.")
    metadata = metadata_from_string(patch.get("clientMetadata"))
    if metadata is not None:
        violations = schema_violations(metadata, catalog.metadata_schema() or {})
        if violations:
            raise invalid(
                "clientMetadata does not conform to the organisation's metadata schema: "
                + "; ".join(violations)
            )
    return {"name": name, "description": patch.get("description"), "client_metadata": metadata}


def _string_map(value: Any) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise invalid("itemsMap and urlsMap map strings to new URLs.")
    return value


def render_item(catalog: Catalog, item: Document, with_metadata: bool) -> dict[str, Any]:
    return {
        "uuid": item["uuid"],
        "parent": item["parent"],
        "itemType": item["item_type"],
        "name": item["name"],
        "description": item.get("description") or "",
        "clientMetadata": json.dumps(item["client_metadata"] if with_metadata else {}),
        "owner": item["owner"],
        "createdAt": item["created_at"],
        "lastEditedAt": item["last_edited_at"],
        "isTombstone": False,
        "isPlaceholder": False,
        "backedDataUnitsCount": catalog.row_count_of_item(item["uuid"]),
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
        "dicomStudyUid": item.get("dicom_study_uid"),
        "dicomSeriesUid": item.get("dicom_series_uid"),
        "frameCount": item["frame_count"],
        "audioSampleRate": item["audio_sample_rate"],
        "audioBitDepth": item["audio_bit_depth"],
        "audioCodec": item["audio_codec"],
        "audioNumChannels": item["audio_num_channels"],
    }


def render_frames(item: Document) -> list[dict[str, Any]]:
    """A group's frames as the child items `get_child_items` reads, in frame order."""
    frame_type = FRAME_TYPES.get(item["item_type"], "image")
    return [
        {
            **render_item_fields(item),
            "uuid": frame["uuid"],
            "itemType": frame_type,
            "name": posixpath.basename(unquote(urlsplit(frame["url"]).path)) or frame["url"],
            "backedDataUnitsCount": 0,
            "url": frame["url"],
            "fileSize": frame.get("file_size"),
            "mimeType": frame.get("mime_type"),
            "height": frame.get("height"),
            "width": frame.get("width"),
            "dicomInstanceUid": frame.get("dicom_instance_uid"),
            "dicomStudyUid": frame.get("dicom_study_uid"),
            "dicomSeriesUid": frame.get("dicom_series_uid"),
            "frameCount": None,
        }
        for frame in item["frames"] or []
    ]


def render_item_fields(item: Document) -> dict[str, Any]:
    """The fields a frame shares with its group."""
    return {
        "parent": item["parent"],
        "description": "",
        "clientMetadata": "{}",
        "owner": item["owner"],
        "createdAt": item["created_at"],
        "lastEditedAt": item["last_edited_at"],
        "isTombstone": False,
        "isPlaceholder": False,
        "storageLocation": "s3",
        "integrationHash": item["integration_hash"],
        "signedUrl": None,
        "duration": None,
        "fps": None,
        "audioSampleRate": None,
        "audioBitDepth": None,
        "audioCodec": None,
        "audioNumChannels": None,
    }
