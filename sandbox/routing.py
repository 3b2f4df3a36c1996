"""A small router: method + path pattern -> handler, shared by the API families."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import ApiError, ErrorKind, invalid
from sandbox.keys import User


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    user: User
    headers: dict[str, str] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str, default: bool | None = False) -> bool | None:
        """Query booleans: the SDK sends Python's `True` / `False`."""
        value = self.param(name)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise invalid(f"Query parameter {name} must be True or False.")

    def integer(self, name: str, default: int) -> int:
        value = self.param(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError as error:
            raise invalid(f"Query parameter {name} must be an integer.") from error

    def json_object(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise invalid("The request body must be a JSON object.")
        return self.body


Handler = Callable[..., Any]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register `handler(request, **path_params)`; `{name}` matches one path segment."""
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method, regex, handler))
            return handler

        return register

    def dispatch(self, request: Request, path: str) -> Any:
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(path)
            if match:
                if method == request.method:
                    return handler(request, **match.groupdict())
                allowed = True
        if allowed:
            raise ApiError(
                ErrorKind.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {path}."
            )
        raise ApiError(ErrorKind.NOT_FOUND, f"No route for {request.method} {path}.")
