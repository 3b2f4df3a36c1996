"""`datasets` (create) and `datasets/list`; rows and linking are v1 (`sandbox.routes.v1`)."""

from __future__ import annotations

from typing import Any

from sandbox.catalog import sql_like
from sandbox.routes.common import Services
from sandbox.routing import Request, Router


def register(router: Router, services: Services) -> None:
    catalog = services.catalog

    @router.route("POST", "datasets")
    def create_dataset(request: Request) -> Any:
        body = request.json_object()
        dataset = catalog.create_dataset(
            services.viewer(request).name,
            body.get("title"),
            body.get("description"),
            bool(body.get("createBackingFolder", True)),
        )
        return {"datasetUuid": dataset["uuid"], "backingFolderUuid": dataset["backing_folder_uuid"]}

    @router.route("GET", "datasets/list")
    def list_datasets(request: Request) -> Any:
        viewer = services.viewer(request)
        title_eq, title_like = request.param("titleEq"), request.param("titleLike")
        visible = catalog.datasets(viewer, org_access=bool(request.flag("includeOrgAccess")))
        return {
            "result": [
                {
                    "datasetUuid": d["uuid"],
                    "title": d["title"],
                    "description": d["description"],
                    "createdAt": d["created_at"],
                    "lastEditedAt": d["last_edited_at"],
                    "userRole": catalog.user_role(viewer, d),
                    "storageLocation": None,
                    "backingFolderUuid": d["backing_folder_uuid"],
                }
                for d in visible
                if (title_eq is None or d["title"] == title_eq)
                and (title_like is None or sql_like(d["title"], title_like))
            ]
        }
