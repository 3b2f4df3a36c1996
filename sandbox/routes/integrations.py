"""`cloud-integrations`: the integrations the user may see."""

from __future__ import annotations

from typing import Any

from sandbox.routes.common import Services
from sandbox.routing import Request, Router


def register(router: Router, services: Services) -> None:
    @router.route("GET", "cloud-integrations")
    def list_integrations(request: Request) -> Any:
        uuids = set(request.params("filterIntegrationUuids"))
        titles = set(request.params("filterIntegrationTitles"))
        visible = services.catalog.integrations(
            services.viewer(request), org_access=bool(request.flag("includeOrgAccess"))
        )
        return {
            "result": [
                {"integrationUuid": x["uuid"], "title": x["title"]}
                for x in visible
                if (not uuids or x["uuid"] in uuids) and (not titles or x["title"] in titles)
            ]
        }
