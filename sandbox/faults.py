"""Fault injection for tests: make routes fail or stall, and jobs linger or fail.

`POST /sandbox/faults` takes one rule or `{"rules": [...]}`; `DELETE /sandbox/faults` clears
them. A route rule:

    {"route": "/v2/public/cloud-integrations",   # glob on the path ("*" matches "/" too)
     "method": "GET",                             # optional
     "queryType": "datasetlinkitems",             # optional, v1 only
     "status": 503,                               # 500, 503, 429 or 413; omit for "slow only"
     "retryAfter": 1,                             # seconds, sent with 429
     "delaySeconds": 0.5,                         # answer late (before failing, if status)
     "count": 2,                                  # the next N matching calls; or
     "fraction": 0.3}                             # that share of them (default: all calls)

A job rule bends the next `count` (default 1) upload jobs:

    {"job": {"pendingPolls": 2, "outcome": "ERROR", "unitDelaySeconds": 0.2}, "count": 1}
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.errors import invalid
from sandbox.jobs import JobFault, Status

FAULT_STATUSES = (413, 429, 500, 503)


@dataclass
class RouteFault:
    route: str
    method: str | None
    query_type: str | None
    status: int | None
    retry_after: int | None
    delay_seconds: float
    remaining: int | None
    fraction: float | None


@dataclass(frozen=True)
class Injection:
    status: int | None
    retry_after: int | None
    delay_seconds: float


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[RouteFault] = []
        self._jobs: list[tuple[JobFault, int]] = []
        self._random = random.Random()

    def add(self, body: Any) -> int:
        rules = body.get("rules") if isinstance(body, dict) and "rules" in body else [body]
        if not isinstance(rules, list):
            raise invalid("rules must be a list of fault rules.")
        parsed = [_parse(rule) for rule in rules]
        with self._lock:
            for rule in parsed:
                if isinstance(rule, RouteFault):
                    self._routes.append(rule)
                else:
                    self._jobs.append(rule)
        return len(parsed)

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()
            self._jobs.clear()

    def for_request(self, method: str, path: str, query_type: str | None) -> Injection | None:
        with self._lock:
            for rule in self._routes:
                if rule.method and rule.method != method:
                    continue
                if rule.query_type and rule.query_type != query_type:
                    continue
                if not fnmatch.fnmatchcase(path, rule.route):
                    continue
                if rule.fraction is not None and self._random.random() >= rule.fraction:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._routes.remove(rule)
                return Injection(rule.status, rule.retry_after, rule.delay_seconds)
        return None

    def next_job_fault(self) -> JobFault | None:
        with self._lock:
            if not self._jobs:
                return None
            fault, remaining = self._jobs.pop(0)
            if remaining > 1:
                self._jobs.insert(0, (fault, remaining - 1))
            return JobFault(**vars(fault))


def _parse(rule: Any) -> RouteFault | tuple[JobFault, int]:
    if not isinstance(rule, dict):
        raise invalid("A fault rule must be an object.")
    count = rule.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise invalid("count must be a positive integer.")
    if "job" in rule:
        job = rule["job"] or {}
        outcome = job.get("outcome")
        if outcome not in (None, Status.ERROR):
            raise invalid('A job outcome can only be "ERROR".')
        fault = JobFault(
            pending_polls=int(job.get("pendingPolls", 0)),
            outcome=Status(outcome) if outcome is not None else None,
            unit_delay_seconds=float(job.get("unitDelaySeconds", 0.0)),
        )
        return fault, count or 1
    status = rule.get("status")
    if status is not None and status not in FAULT_STATUSES:
        raise invalid(f"status must be one of {FAULT_STATUSES}.")
    delay = float(rule.get("delaySeconds", 0.0))
    if status is None and not delay:
        raise invalid("A route fault needs a status or a delaySeconds.")
    fraction = rule.get("fraction")
    if fraction is not None and not 0 < float(fraction) <= 1:
        raise invalid("fraction must be in (0, 1].")
    if not isinstance(rule.get("route"), str):
        raise invalid("A route fault needs a route (a glob on the request path).")
    return RouteFault(
        route=rule["route"],
        method=rule.get("method"),
        query_type=rule.get("queryType"),
        status=status,
        retry_after=rule.get("retryAfter", 1 if status == 429 else None),
        delay_seconds=delay,
        remaining=count,
        fraction=float(fraction) if fraction is not None else None,
    )
