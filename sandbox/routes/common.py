"""What the v2 route modules share: the services they call, paging, and the wire shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.catalog import Catalog, Viewer
from sandbox.errors import invalid
from sandbox.jobs import Jobs
from sandbox.readings import ReadingsHolder
from sandbox.routing import Request
from sandbox.state import Cursor, Document

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class Services:
    catalog: Catalog
    jobs: Jobs
    readings: ReadingsHolder

    def viewer(self, request: Request) -> Viewer:
        name = request.user.name
        return Viewer(name, org_admin=name in self.readings.current.org_admins)


@dataclass(frozen=True)
class Paging:
    page_size: int
    after: Cursor | None
    by_name: bool
    descending: bool


def paging(request: Request) -> Paging:
    page_size = request.integer("pageSize", DEFAULT_PAGE_SIZE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid(f"pageSize must be between 1 and {MAX_PAGE_SIZE}.")
    order = request.param("order", "name")
    if order not in ("name", "createdAt"):
        raise invalid("order must be name or createdAt.")
    token = request.param("pageToken")
    return Paging(
        page_size,
        _decode_token(token) if token else None,
        order == "name",
        bool(request.flag("desc")),
    )


def take(
    scan: Iterable[tuple[Cursor, Document]], wanted: Callable[[Document], bool], page_size: int
) -> tuple[list[Document], str | None]:
    """Up to `page_size` wanted records, and a token if at least one more follows."""
    results: list[Document] = []
    last: Cursor | None = None
    for cursor, record in scan:
        if not wanted(record):
            continue
        if len(results) == page_size and last is not None:
            return results, _encode_token(last)
        results.append(record)
        last = cursor
    return results, None


def _encode_token(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode()


def _decode_token(token: str) -> Cursor:
    try:
        sort, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(sort), int(seq)
    except (ValueError, TypeError) as error:
        raise invalid("Invalid pageToken.") from error


def metadata_from_string(value: Any) -> dict | None:
    """Folder and item `clientMetadata` travel as a JSON string."""
    if value is None:
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError as error:
        raise invalid("clientMetadata must be a JSON object (as a string).") from error
    if not isinstance(parsed, dict):
        raise invalid("clientMetadata must be a JSON object.")
    return parsed
