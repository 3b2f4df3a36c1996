"""Readings: where Encord's documentation and SDK are silent, which behaviour the sandbox plays.

Each field is one undocumented point. The default is the least forgiving plausible reading;
the other readings are switched on per sandbox (`create_sandbox(**readings)`, CLI flags of
`python -m sandbox serve`) or at run time (`PATCH /sandbox/readings`, `Sandbox.set_readings`).
`sandbox/README.md` lists each with its source.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from sandbox.errors import invalid

DEFAULT_MAX_JOB_ENTRIES = 10_000
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024


class LinkedItemDeletion(StrEnum):
    """What deleting a storage item that a Dataset uses does."""

    REFUSE = "refuse"  # the call fails and nothing is deleted
    CASCADE = "cascade"  # the item goes, and its data rows with it


@dataclass(frozen=True)
class Readings:
    # items_with_names also lists units skipped by skip_duplicate_urls (the existing item).
    report_skipped_duplicates: bool = False
    # Entries (units as submitted) one upload job may hold; more is HTTP 413.
    max_job_entries: int = DEFAULT_MAX_JOB_ENTRIES
    # Request bodies larger than this are HTTP 413.
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    # Two concurrent jobs with skip_duplicate_urls importing one URL: the job settling second
    # skips it (True), or both import it (False: two items for one URL).
    dedupe_concurrent_jobs: bool = False
    # Deleting an item used by a Dataset.
    linked_item_deletion: LinkedItemDeletion = LinkedItemDeletion.REFUSE
    # Users (key comments) who are organisation admins: `include_org_access=True` lists
    # everything for them, and they may open any record by id.
    org_admins: tuple[str, ...] = ()

    def replaced(self, changes: dict[str, Any]) -> Readings:
        """A copy with `changes` (field names, snake_case or camelCase) applied and checked."""
        known = {field.name: field for field in fields(self)}
        by_camel = {_camel(name): name for name in known}
        normalised: dict[str, Any] = {}
        for name, value in changes.items():
            field_name = by_camel.get(name, name)
            if field_name not in known:
                raise invalid(f"Unknown reading {name!r}; known: {', '.join(sorted(known))}.")
            normalised[field_name] = _checked(field_name, value)
        return dataclasses.replace(self, **normalised)

    def as_json(self) -> dict[str, Any]:
        return {
            _camel(field.name): list(value) if isinstance(value, tuple) else value
            for field in fields(self)
            for value in [getattr(self, field.name)]
        }


def _checked(name: str, value: Any) -> Any:
    if name in ("report_skipped_duplicates", "dedupe_concurrent_jobs"):
        if not isinstance(value, bool):
            raise invalid(f"{name} must be true or false.")
        return value
    if name in ("max_job_entries", "max_request_bytes"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise invalid(f"{name} must be a positive integer.")
        return value
    if name == "linked_item_deletion":
        try:
            return LinkedItemDeletion(value)
        except ValueError as error:
            choices = ", ".join(choice.value for choice in LinkedItemDeletion)
            raise invalid(f"linked_item_deletion must be one of {choices}.") from error
    if name == "org_admins":
        if isinstance(value, str) or not all(isinstance(user, str) for user in value):
            raise invalid("org_admins must be a list of user names.")
        return tuple(value)
    raise AssertionError(name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class ReadingsHolder:
    """The sandbox's current readings; replaced whole, so readers see one consistent set."""

    def __init__(self, readings: Readings):
        self._readings = readings
        self._lock = threading.Lock()

    @property
    def current(self) -> Readings:
        return self._readings

    def update(self, changes: dict[str, Any]) -> Readings:
        with self._lock:
            self._readings = self._readings.replaced(changes)
            return self._readings
