"""Check every response the sandbox sent against the pinned SDK's own models.

The SDK parses what it uses, but a test that only calls a few methods would not notice a
drifting field the SDK skips. Here each recorded response is parsed with the model the SDK
uses for that route, so a change in the pinned SDK's models shows up at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from encord.exceptions import EncordException
from encord.http.error_utils import check_error_response
from encord.http.v2.error_utils import handle_error_response
from encord.http.v2.payloads import Page
from encord.metadata_schema import _ClientMetadataSchema
from encord.orm.client_metadata_schema import ClientMetadataSchema
from encord.orm.cloud_integration import GetCloudIntegrationsResponse
from encord.orm.dataset import (
    CreateDatasetResponseV2,
    DataRow,
    DatasetDataLongPolling,
    DatasetsWithUserRolesListResponse,
)
from encord.orm.dataset import Dataset as OrmDataset
from encord.orm.storage import (
    AddDataToFolderJobCancelResponse,
    DeleteItemsResponse,
    StorageFolder,
    StorageItem,
    UploadLongPollingState,
    _StorageItemPrivateSummary,
)

from sandbox.app import Exchange


def _nullable(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda body: None if body is None else parse(body)


def _each(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_all(body: Any) -> Any:
        assert isinstance(body, list), body
        return [parse(element) for element in body]

    return parse_all


def _process_hash(body: Any) -> Any:
    return uuid.UUID(body["process_hash"])


V2_MODELS: list[tuple[str, str, Callable[[Any], Any]]] = [
    (
        "GET",
        r"organisation/client-metadata-schema-v2",
        _nullable(_ClientMetadataSchema.model_validate),
    ),
    ("POST", r"organisation/client-metadata-schema-v2", lambda body: body is None or body),
    ("GET", r"organisation/client-metadata-schema", _nullable(ClientMetadataSchema.from_dict)),
    ("POST", r"organisation/client-metadata-schema", lambda body: body is None or body),
    ("GET", r"cloud-integrations", GetCloudIntegrationsResponse.from_dict),
    ("GET", r"storage/(search/)?folders", Page[StorageFolder].from_dict),
    ("POST", r"storage/folders", StorageFolder.from_dict),
    ("GET", r"storage/folders/[^/]+", StorageFolder.from_dict),
    ("PATCH", r"storage/folders/patch-bulk", Page[StorageFolder].from_dict),
    ("PATCH", r"storage/folders/[^/]+", StorageFolder.from_dict),
    ("GET", r"storage/folders/[^/]+/items", Page[StorageItem].from_dict),
    ("GET", r"storage/items/[^/]+", StorageItem.from_dict),
    ("GET", r"storage/folders/[^/]+/items/[^/]+/child-items", Page[StorageItem].from_dict),
    ("GET", r"storage/folders/[^/]+/items/[^/]+/summary", _StorageItemPrivateSummary.from_dict),
    ("POST", r"storage/folders/[^/]+/items/delete", DeleteItemsResponse.from_dict),
    ("POST", r"storage/items/migrate-storage", lambda body: body is None or body),
    ("PATCH", r"storage/items/patch-bulk", Page[StorageItem].from_dict),
    ("PATCH", r"storage/folders/[^/]+/items/[^/]+", StorageItem.from_dict),
    ("POST", r"storage/items/get-bulk", Page[StorageItem].from_dict),
    ("POST", r"storage/folders/[^/]+/data-upload-jobs", uuid.UUID),
    ("GET", r"storage/folders/[^/]+/data-upload-jobs/[^/]+", UploadLongPollingState.from_dict),
    (
        "POST",
        r"storage/folders/[^/]+/data-upload-jobs/[^/]+/cancel",
        AddDataToFolderJobCancelResponse.from_dict,
    ),
    ("POST", r"datasets", CreateDatasetResponseV2.from_dict),
    ("GET", r"datasets/list", DatasetsWithUserRolesListResponse.from_dict),
]
V1_MODELS: dict[str, Callable[[Any], Any]] = {
    "dataset": OrmDataset.from_dict,
    "datasetlinkitems": _each(DataRow.from_dict),
    "datarows": _each(DataRow.from_dict),
    "video": lambda body: body,  # Dataset.delete_data reads nothing back
    "datasetdatalongpolling": lambda body: (
        _process_hash(body) if "process_hash" in body else DatasetDataLongPolling.from_dict(body)
    ),
}


def check_exchange(exchange: Exchange) -> None:
    """Raise unless the SDK would read this response as the route's model or as a known error."""
    if exchange.path.startswith("/v2/public/"):
        _check_v2(exchange, exchange.path.removeprefix("/v2/public/"))
    else:
        _check_v1(exchange)


def _check_v2(exchange: Exchange, route: str) -> None:
    if exchange.status != 200:
        assert isinstance(exchange.body, dict) and isinstance(exchange.body.get("message"), str)
        _expect_sdk_error(
            lambda: handle_error_response(exchange.status, {}, exchange.body["message"])
        )
        return
    for method, pattern, parse in V2_MODELS:
        if method == exchange.method and re.fullmatch(pattern, route):
            parse(exchange.body)
            return
    raise AssertionError(f"no SDK model known for {exchange.method} {route}")


def _check_v1(exchange: Exchange) -> None:
    body = exchange.body
    if exchange.status in (413, 429):
        return  # the SDK reads the status alone
    assert isinstance(body, dict), body
    if body.get("status") != 200:
        _expect_sdk_error(
            lambda: check_error_response(body.get("response"), None, body.get("payload"))
        )
        return
    parse = V1_MODELS.get(exchange.query_type or "")
    assert parse is not None, f"no SDK model known for v1 {exchange.query_type}"
    parse(body["response"])


def _expect_sdk_error(raise_it: Callable[[], None]) -> None:
    try:
        raise_it()
    except EncordException:
        return
    raise AssertionError("the SDK did not map this error response to one of its exceptions")
