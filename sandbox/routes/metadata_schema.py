"""`organisation/client-metadata-schema-v2` and the deprecated `organisation/client-metadata-schema`."""

from __future__ import annotations

from typing import Any

from sandbox.errors import invalid
from sandbox.routes.common import Services
from sandbox.routing import Request, Router

SCHEMA_TYPES = {
    "number", "boolean", "varchar", "text", "datetime", "uuid", "user", "geospatial",
    "enum", "embedding", "variant", "tombstone",
}  # fmt: skip
# The deprecated schema API names a handful of plain types; map them to and from v2 options.
LEGACY_TO_V2: dict[str, dict[str, Any]] = {
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
LEGACY_SCHEMA_UUID = "00000000-0000-0000-0000-000000000001"


def register(router: Router, services: Services) -> None:
    catalog = services.catalog

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
            "uuid": LEGACY_SCHEMA_UUID,
            "metadataSchema": legacy,
            "organisationId": 1,
            "createdAt": updated,
            "updatedAt": updated,
        }

    @router.route("POST", "organisation/client-metadata-schema")
    def save_legacy_schema(request: Request) -> None:
        body = request.json_object()
        schema: dict[str, Any] = {}
        for key, ty in body.items():
            if ty not in LEGACY_TO_V2:
                raise invalid(
                    f"Key {key!r}: the legacy schema API cannot define {ty!r} (it needs values or a size); "
                    "use the v2 metadata schema."
                )
            schema[key] = dict(LEGACY_TO_V2[ty])
        catalog.save_metadata_schema(schema)


def _checked_schema(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("The metadata schema must be an object of key -> option.")
    for key, option in body.items():
        if not isinstance(option, dict) or option.get("ty") not in SCHEMA_TYPES:
            raise invalid(f"Key {key!r}: unknown metadata schema option {option!r}.")
    return body
