"""One request in, one response out: families, authentication, faults and recording.

- `/v2/public/...`: v2 REST, signed with the v2 scheme;
- `/public`, `/public/user`: v1 RPC envelopes, signed with the v1 scheme;
- `/sandbox/...`: the sandbox's own controls (integrations as Encord's web app creates them,
  sharing, readings, fault injection). They take no signature: they stand for things done
  outside the SDK.

A request body over the `max_request_bytes` reading is refused with HTTP 413 before it is
parsed, as Encord's front end refuses one (the SDK raises `PayloadTooLargeError`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.auth import AuthenticationFailed, Authenticator
from sandbox.catalog import Shareable
from sandbox.errors import ApiError, ErrorKind, invalid
from sandbox.faults import Faults, Injection
from sandbox.routes import build_v2_router
from sandbox.routes.common import Services
from sandbox.routes.v1 import V1Api
from sandbox.routing import Request
from sandbox.s3_access import S3Gateway

logger = logging.getLogger("sandbox")
V2_PREFIX = "/v2/public/"
V1_PATHS = ("/public", "/public/user")


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # JSON-serialisable
    headers: tuple[tuple[str, str], ...] = ()

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Exchange:
    """One answered API call, kept so tests can check every response against the SDK."""

    method: str
    path: str
    query_type: str | None
    status: int
    body: Any


@dataclass(frozen=True)
class _Call:
    """An API request as received: `target` and `raw_body` exactly as signed."""

    family: str  # "v1" or "v2"
    method: str
    target: str
    path: str
    headers: Mapping[str, str]
    raw_body: bytes
    body: Any
    query_type: str | None


class App:
    def __init__(
        self,
        services: Services,
        gateway: S3Gateway,
        authenticator: Authenticator,
        faults: Faults,
        record_exchanges: bool,
        default_owner: str,
    ):
        self._services = services
        self._catalog = services.catalog
        self._authenticator = authenticator
        self._faults = faults
        self._default_owner = default_owner
        self._v2 = build_v2_router(services, gateway)
        self._v1 = V1Api(services)
        self._record_exchanges = record_exchanges
        self._exchanges: list[Exchange] = []
        self._exchanges_lock = threading.Lock()

    def exchanges(self) -> list[Exchange]:
        with self._exchanges_lock:
            return list(self._exchanges)

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Response:
        path = urlsplit(target).path
        if path.startswith("/sandbox/"):
            return self._control(method, path, raw_body)
        family = "v2" if path.startswith(V2_PREFIX) else "v1" if path in V1_PATHS else None
        if family is None:
            return Response(404, {"message": f"Nothing is served at {path}."})
        limit = self._services.readings.current.max_request_bytes
        if len(raw_body) > limit:
            too_large = ApiError(
                ErrorKind.PAYLOAD_TOO_LARGE,
                f"The request body is {len(raw_body)} bytes; at most {limit} are accepted.",
            )
            response = _error(family, too_large)
            self._record(method, path, None, response)
            return response
        body = _parse_json(raw_body)
        query_type = body.get("query_type") if family == "v1" and isinstance(body, dict) else None
        call = _Call(family, method, target, path, headers, raw_body, body, query_type)
        response = self._answer(call)
        self._record(method, path, query_type, response)
        return response

    def _record(self, method: str, path: str, query_type: str | None, response: Response) -> None:
        if self._record_exchanges:
            with self._exchanges_lock:
                self._exchanges.append(
                    Exchange(method, path, query_type, response.status, response.body)
                )

    def _answer(self, call: _Call) -> Response:
        injection = self._faults.for_request(call.method, call.path, call.query_type)
        if injection is not None:
            time.sleep(injection.delay_seconds)
            if injection.status is not None:
                return _fault_response(call.family, injection, injection.status)
        try:
            if call.family == "v2":
                user = self._authenticator.verify_v2(
                    call.method, call.target, call.headers, call.raw_body
                )
            else:
                user = self._authenticator.verify_v1(call.headers, call.raw_body)
        except AuthenticationFailed as failure:
            return _error(call.family, ApiError(ErrorKind.UNAUTHENTICATED, str(failure)))
        request = Request(
            method=call.method,
            path=call.path,
            query=parse_qs(urlsplit(call.target).query, keep_blank_values=True),
            body=call.body,
            user=user,
            headers={name: call.headers.get(name) or "" for name in ("ResourceType", "ResourceID")},
        )
        try:
            if call.body is _UNPARSEABLE:
                raise invalid("The request body is not valid JSON.")
            if call.family == "v2":
                return Response(200, self._v2.dispatch(request, call.path[len(V2_PREFIX) :]))
            return Response(200, {"status": 200, "response": self._v1.handle(request)})
        except ApiError as error:
            return _error(call.family, error)
        except Exception:
            logger.exception("sandbox bug answering %s %s", call.method, call.path)
            return _error(
                call.family, ApiError(ErrorKind.INTERNAL, "Internal error in the sandbox.")
            )

    def _control(self, method: str, path: str, raw_body: bytes) -> Response:
        body = _parse_json(raw_body)
        try:
            if body is _UNPARSEABLE:
                raise invalid("The request body is not valid JSON.")
            return Response(200, self._control_answer(method, path, body))
        except ApiError as error:
            return Response(error.kind.http_status, {"message": error.message})

    def _control_answer(self, method: str, path: str, body: Any) -> Any:
        if (method, path) == ("POST", "/sandbox/integrations"):
            if not isinstance(body, dict):
                raise invalid("Expected {title, provider, roleArn, externalId, owner?}.")
            integration = self._catalog.add_integration(
                body.get("owner") or self._default_owner,
                body.get("title"),
                body.get("provider", "AWS"),
                body.get("roleArn"),
                body.get("externalId"),
            )
            return {"integrationUuid": integration["uuid"], "title": integration["title"]}
        if (method, path) == ("POST", "/sandbox/shares"):
            if not isinstance(body, dict):
                raise invalid("Expected {kind, uuid, user}.")
            try:
                kind = Shareable(str(body.get("kind")))
            except ValueError as error:
                kinds = ", ".join(k.value for k in Shareable)
                raise invalid(f"kind must be one of {kinds}.") from error
            uuid, user = body.get("uuid"), body.get("user")
            if not (isinstance(uuid, str) and isinstance(user, str) and user):
                raise invalid("A share needs the record's uuid and the user's name.")
            self._catalog.share(kind, uuid, user)
            return {"shared": True}
        if (method, path) == ("GET", "/sandbox/readings"):
            return self._services.readings.current.as_json()
        if (method, path) == ("PATCH", "/sandbox/readings"):
            if not isinstance(body, dict):
                raise invalid("Expected an object of reading -> value.")
            return self._services.readings.update(body).as_json()
        if (method, path) == ("POST", "/sandbox/faults"):
            return {"added": self._faults.add(body)}
        if (method, path) == ("DELETE", "/sandbox/faults"):
            self._faults.clear()
            return {"cleared": True}
        if (method, path) == ("GET", "/sandbox/health"):
            return {"ok": True}
        raise ApiError(ErrorKind.NOT_FOUND, f"No sandbox control {method} {path}.")


_UNPARSEABLE = object()


def _parse_json(raw_body: bytes) -> Any:
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except ValueError:
        return _UNPARSEABLE


def _error(family: str, error: ApiError) -> Response:
    # v1 reads 429 and 413 from the HTTP status before any envelope.
    if family == "v2" or error.kind in (ErrorKind.RATE_LIMITED, ErrorKind.PAYLOAD_TOO_LARGE):
        return Response(error.kind.http_status, {"message": error.message})
    # v1: the envelope carries the error; the HTTP status is informative only.
    envelope = {
        "status": error.kind.http_status,
        "response": [error.kind.v1_code],
        "payload": error.message,
    }
    return Response(error.kind.http_status, envelope)


def _fault_response(family: str, injection: Injection, status: int) -> Response:
    message = f"Injected fault: HTTP {status}."
    headers = (
        (("Retry-After", str(injection.retry_after)),) if injection.retry_after is not None else ()
    )
    if family == "v2" or status in (413, 429):  # v1 reads these from the HTTP status
        return Response(status, {"message": message}, headers)
    envelope = {"status": status, "response": ["UNKNOWN_ERROR"], "payload": message}
    return Response(status, envelope, headers)
