"""`storage/folders/{uuid}/data-upload-jobs...`: start, long-poll and cancel upload jobs."""

from __future__ import annotations

from typing import Any

from sandbox.errors import invalid
from sandbox.routes.common import Services
from sandbox.routing import Request, Router
from sandbox.upload_spec import parse_request


def register(router: Router, services: Services) -> None:
    catalog, jobs = services.catalog, services.jobs

    @router.route("POST", "storage/folders/{folder_uuid}/data-upload-jobs")
    def start_upload(request: Request, folder_uuid: str) -> Any:
        body = request.json_object()
        if not body.get("integrationHash"):
            raise invalid("The sandbox imports private data only: pass an integration.")
        return jobs.start(
            viewer=services.viewer(request),
            folder_uuid=folder_uuid,
            integration_uuid=str(body["integrationHash"]),
            spec=parse_request(body),
            ignore_errors=bool(body.get("ignoreErrors", False)),
            file_name=body.get("fileName"),
        )

    @router.route("GET", "storage/folders/{folder_uuid}/data-upload-jobs/{job_uuid}")
    def upload_result(request: Request, folder_uuid: str, job_uuid: str) -> Any:
        catalog.folder(folder_uuid, services.viewer(request))
        timeout = request.integer("timeoutSeconds", 60)
        return upload_state(jobs.result(job_uuid, timeout, folder_uuid=folder_uuid))

    @router.route("POST", "storage/folders/{folder_uuid}/data-upload-jobs/{job_uuid}/cancel")
    def cancel_upload(request: Request, folder_uuid: str, job_uuid: str) -> Any:
        catalog.folder(folder_uuid, services.viewer(request))
        return {"unitsCancelledCount": jobs.cancel(job_uuid, folder_uuid=folder_uuid)}


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
