"""`storage/folders...`: create, get, update and list folders (top level or searched)."""

from __future__ import annotations

import json
from typing import Any

from sandbox.catalog import Catalog, Viewer
from sandbox.errors import invalid
from sandbox.routes.common import Services, metadata_from_string, paging, take
from sandbox.routing import Request, Router
from sandbox.state import Document


def register(router: Router, services: Services) -> None:
    catalog = services.catalog

    @router.route("GET", "storage/folders")
    def list_folders(request: Request) -> Any:
        return _folder_page(request, top_level_only=not request.flag("isRecursive"))

    @router.route("GET", "storage/search/folders")
    def search_folders(request: Request) -> Any:
        return _folder_page(request, top_level_only=False)

    def _folder_page(request: Request, *, top_level_only: bool) -> Any:
        viewer = services.viewer(request)
        search = (request.param("search") or "").lower()
        synced = request.flag("datasetSynced", None)
        if request.params("organisationTagNamesAllof"):
            raise invalid("The sandbox has no organisation tags.")

        def wanted(folder: Document) -> bool:
            if search and search not in folder["name"].lower():
                return False
            return synced is None or bool(folder["synced_dataset_hash"]) == synced

        page = paging(request)
        scan = catalog.scan_folders(
            viewer,
            top_level_only=top_level_only,
            by_name=page.by_name,
            descending=page.descending,
            after=page.after,
            org_access=bool(request.flag("includeOrgAccess")),
        )
        results, token = take(scan, wanted, page.page_size)
        return {
            "results": [render_folder(catalog, f, viewer) for f in results],
            "nextPageToken": token,
        }

    @router.route("POST", "storage/folders")
    def create_folder(request: Request) -> Any:
        body = request.json_object()
        if body.get("cloudSyncedFolderParams"):
            raise invalid("The sandbox does not support cloud-synced folders.")
        viewer = services.viewer(request)
        folder = catalog.create_folder(
            viewer.name,
            body.get("name"),
            body.get("description"),
            body.get("parent"),
            metadata_from_string(body.get("clientMetadata")),
        )
        return render_folder(catalog, folder, viewer)

    @router.route("GET", "storage/folders/{folder_uuid}")
    def get_folder(request: Request, folder_uuid: str) -> Any:
        viewer = services.viewer(request)
        return render_folder(catalog, catalog.folder(folder_uuid, viewer), viewer)

    @router.route("PATCH", "storage/folders/patch-bulk")
    def update_folders(request: Request) -> Any:
        viewer = services.viewer(request)
        patches = request.json_object().get("folderPatches") or {}
        folders = [
            catalog.update_folder(uuid, _folder_changes(patch), viewer)
            for uuid, patch in patches.items()
        ]
        return {
            "results": [render_folder(catalog, f, viewer) for f in folders],
            "nextPageToken": None,
        }

    @router.route("PATCH", "storage/folders/{folder_uuid}")
    def update_folder(request: Request, folder_uuid: str) -> Any:
        viewer = services.viewer(request)
        changes = _folder_changes(request.json_object())
        return render_folder(catalog, catalog.update_folder(folder_uuid, changes, viewer), viewer)


def _folder_changes(patch: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": patch.get("name"),
        "description": patch.get("description"),
        "client_metadata": metadata_from_string(patch.get("clientMetadata")),
    }


def render_folder(catalog: Catalog, folder: Document, viewer: Viewer) -> dict[str, Any]:
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
        "userRole": catalog.user_role(viewer, folder),
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
