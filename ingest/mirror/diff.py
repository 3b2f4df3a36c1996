"""The mirror's decisions, pure: no Encord, no S3, no SQLite.

Against the items a previous sync left (`Prior`, from the run state), each entry of this
scan that is not already in Encord is one `Change`:

- ADD: nothing of that title was imported, and no item has its content signature.
- UPDATE: the item of that title has the same ETags: only its metadata can differ, which
  the upload's `upsert_metadata` updates in place.
- CONTENT: the item of that title has other ETags (for a group or series: any frame). With
  `changes: metadata` it goes through as an UPDATE (Encord skips the known URL, so the
  media is NOT refreshed, and the summary says so); with `changes: reimport` the old item is
  deleted first (its annotations with it) and the entry uploaded anew.
- MOVE: no item has its title, but one has its signature (the same ETags and sizes, frame
  by frame, in order). If such an item is gone from this scan it is re-pointed to the new
  URL(s), keeping its uuid, annotations and Dataset row; otherwise (a copy) it is an ADD.

Items whose title this scan does not have are gone: `deletions` says whether they are kept,
unlinked from the Dataset or deleted. Size + ETag, not ETag alone, identifies content: a
multipart ETag is only a hash of part hashes, and two empty objects share one ETag.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from ingest.errors import UserError
from ingest.model import Entry
from ingest.settings import IngestSettings

Removal = Literal["keep", "unlink", "delete"]
PRESENT, UNLINKED = "present", "unlinked"


class Change(StrEnum):
    ADD = "add"
    UPDATE = "update"
    CONTENT = "content"
    MOVE = "move"


@dataclass(frozen=True)
class Policy:
    """The settings' mirror fields (`ingest.settings.IngestSettings`)."""

    deletions: Removal = "keep"
    changes: Literal["metadata", "reimport"] = "metadata"
    renames: Literal["repoint", "ignore"] = "repoint"
    max_deletes: int = 1000
    max_delete_fraction: float = 0.1
    allow_mass_delete: bool = False

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Policy:
        return cls(
            deletions=settings.deletions,
            changes=settings.changes,
            renames=settings.renames,
            max_deletes=settings.max_deletes,
            max_delete_fraction=settings.max_delete_fraction,
            allow_mass_delete=settings.allow_mass_delete,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "deletions": self.deletions,
            "changes": self.changes,
            "renames": self.renames,
            "maxDeletes": self.max_deletes,
            "maxDeleteFraction": self.max_delete_fraction,
            "allowMassDelete": self.allow_mass_delete,
        }


@dataclass(frozen=True)
class Prior:
    """A storage item a previous sync left, as the run state remembers it. `etags` is empty
    when unknown (provenance recovered from a Folder listing): then it is never taken for
    changed or moved, only for gone or kept."""

    item_uuid: str
    title: str
    urls: tuple[str, ...]
    etags: tuple[str, ...]
    signature: str | None
    status: str = PRESENT


@dataclass(frozen=True)
class Held:
    """An entry of this scan waiting for the mirror step: a MOVE candidate, or CONTENT to
    reimport (`item_uuid`: the item it replaces)."""

    fingerprint: str
    title: str
    change: Change
    signature: str | None
    item_uuid: str | None = None


def signature(etags: Iterable[str], sizes: Iterable[int]) -> str | None:
    """What identifies an entry's content wherever it lies; None when sizes are unknown."""
    etags, sizes = tuple(etags), tuple(sizes)
    if not etags or len(sizes) != len(etags):
        return None
    return json.dumps([etags, sizes], separators=(",", ":"))


def entry_signature(entry: Entry) -> str | None:
    return signature(entry.etags, entry.sizes)


def classify(entry: Entry, same_title: Prior | None, same_signature_elsewhere: bool) -> Change:
    """What a not-yet-imported entry is to the items before it (see the module docstring).
    `same_signature_elsewhere`: some item of another title has the entry's signature."""
    if same_title is not None:
        if same_title.etags and tuple(entry.etags) != same_title.etags:
            return Change.CONTENT
        return Change.UPDATE
    return Change.MOVE if same_signature_elsewhere else Change.ADD


def holds(change: Change, policy: Policy) -> bool:
    """Whether the entry waits for the mirror step instead of going to the upload at once."""
    if change is Change.MOVE:
        return policy.renames == "repoint"
    return change is Change.CONTENT and policy.changes == "reimport"


def pair_moves(candidates: Iterable[Held], gone: Iterable[Prior]) -> list[tuple[Prior, Held]]:
    """Each gone item matched to an appeared entry of the same signature. When several
    share one signature (identical files), they pair in title order, so a rerun pairs them
    the same way; the unpaired rest are additions (candidates) or removals (gone)."""
    by_signature: dict[str, list[Held]] = defaultdict(list)
    for held in candidates:
        if held.signature is not None:
            by_signature[held.signature].append(held)
    gone_by_signature: dict[str, list[Prior]] = defaultdict(list)
    for prior in gone:
        if prior.signature in by_signature:
            gone_by_signature[prior.signature].append(prior)
    pairs: list[tuple[Prior, Held]] = []
    for sig, priors in sorted(gone_by_signature.items()):
        appeared = sorted(by_signature[sig], key=lambda held: held.title)
        pairs.extend(zip(sorted(priors, key=lambda prior: prior.title), appeared, strict=False))
    return pairs


def removal(prior: Prior, policy: Policy) -> Removal | None:
    """What a sync does to an item gone from the bucket; None: nothing left to do (an item
    unlinked by an earlier sync, when this one does not delete)."""
    if prior.status == UNLINKED:
        return "delete" if policy.deletions == "delete" else None
    return policy.deletions


@dataclass(frozen=True)
class Removals:
    """How many items a sync would take out of the Dataset or the folder."""

    unlink: int = 0
    delete: int = 0
    reimport: int = 0

    @property
    def total(self) -> int:
        return self.unlink + self.delete + self.reimport


class MassDeleteRefused(UserError):
    """The sync would remove more than the limits allow: nothing was changed."""


def check_limits(removals: Removals, mirrored: int, scanned: int, policy: Policy) -> None:
    """Refuse, before anything is changed, a sync that removes too much.

    An empty scan never removes anything, whatever the flags: an expired credential or a
    wrong prefix lists nothing, and must not empty a Dataset. `mirrored`: the items the
    previous sync left in the Dataset (the denominator of `maxDeleteFraction`)."""
    if not removals.total:
        return
    if scanned == 0:
        raise MassDeleteRefused(
            f"the bucket listing found no objects, yet {mirrored} item(s) were imported before:"
            f" refusing to unlink or delete {removals.total} of them (nothing changed). Check"
            " the prefixes and the AWS credentials; an empty listing never deletes anything"
        )
    if policy.allow_mass_delete:
        return
    share = removals.total / mirrored if mirrored else 1.0
    over = []
    if removals.total > policy.max_deletes:
        over.append(f"more than maxDeletes {policy.max_deletes}")
    if share > policy.max_delete_fraction:
        over.append(
            f"{share:.0%} of the {mirrored} item(s) in the Dataset, more than "
            f"maxDeleteFraction {policy.max_delete_fraction:g}"
        )
    if over:
        raise MassDeleteRefused(
            f"this sync would remove {removals.total} item(s) (unlink {removals.unlink}, "
            f"delete {removals.delete}, reimport {removals.reimport}): {' and '.join(over)}."
            " Nothing was changed. If that is intended, rerun with --allow-mass-delete"
            " (or raise --max-deletes / --max-delete-fraction)"
        )
