"""Errors the API reports, and how each family puts them on the wire.

v2 answers with an HTTP status and `{"message": ...}` (encord/http/v2/error_utils.py);
v1 answers HTTP 200 with an envelope whose `response` names the error
(encord/http/error_utils.py), except for the statuses its client reads first (429, 413).
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    # (v2 HTTP status, v1 envelope code)
    INVALID_ARGUMENTS = (400, "INVALID_ARGUMENTS_ERROR")
    UNAUTHENTICATED = (401, "AUTHENTICATION_ERROR")
    FORBIDDEN = (403, "AUTHORISATION_ERROR")
    NOT_FOUND = (404, "RESOURCE_NOT_FOUND_ERROR")
    METHOD_NOT_ALLOWED = (405, "METHOD_NOT_ALLOWED_ERROR")
    EXISTS = (409, "RESOURCE_EXISTS_ERROR")
    PAYLOAD_TOO_LARGE = (413, "PAYLOAD_TOO_LARGE")
    RATE_LIMITED = (429, "RATE_LIMIT_ERROR")
    INTERNAL = (500, "UNKNOWN_ERROR")
    UNAVAILABLE = (503, "UNKNOWN_ERROR")

    @property
    def http_status(self) -> int:
        return self.value[0]

    @property
    def v1_code(self) -> str:
        return self.value[1]


class ApiError(Exception):
    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid(message: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_ARGUMENTS, message)


def not_found(message: str) -> ApiError:
    return ApiError(ErrorKind.NOT_FOUND, message)
