"""The mirror step of `ingest run`, and the preview of `ingest plan`.

While the scan streams, `Classifier` sorts each entry not yet in Encord (`diff.classify`):
most go straight on to the upload; moves and (with `changes: reimport`) changed items are
held in the run state. After the scan, `mirror` pairs moves with gone items, checks the
limits (`diff.check_limits`) before changing anything, then in this order re-points moved
items, removes gone ones (per `deletions`), replaces changed ones, and returns the held
entries that still need uploading. Every change is an intent in the state before Encord is
asked and done after, and each is idempotent (unlinking a row that is gone, deleting an
item that is gone, re-pointing to where it already points change nothing), so a run killed
anywhere and rerun finishes the same plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ingest.mirror.diff import (
    Change,
    Held,
    MassDeleteRefused,
    Policy,
    Prior,
    Removals,
    check_limits,
    classify,
    entry_signature,
    holds,
    pair_moves,
    removal,
)
from ingest.model import Entry
from ingest.settings import IngestSettings
from ingest.state import STATE_FILE, RunState

if TYPE_CHECKING:  # `ingest plan` previews the mirror without importing the encord SDK
    from encord.dataset import Dataset
    from encord.storage import StorageFolder

    from ingest.encord.client import EncordClient, FolderItem

REMOVE_BATCH_SIZE = 100
SHOWN_MOVES = 10


@dataclass
class MirrorReport:
    """What a sync did (or, as a preview, would do) beyond adding new objects."""

    policy: Policy
    preview: bool = False
    no_state: bool = False  # a preview without a run state: everything is new
    unchanged: int = 0  # preview only: entries already in Encord as they are
    added: int = 0
    updated: int = 0
    content_changed: int = 0  # objects with a new ETag (any frame, for a group)
    content_not_refreshed: int = 0  # of those: metadata updated, media not
    repointed: int = 0
    moves: list[dict[str, str]] = field(default_factory=list)  # the first few, from → to
    reimported: int = 0
    gone: int = 0  # items whose objects are no longer in the bucket
    kept: int = 0  # of those: left in the Dataset (`deletions: keep`)
    unlinked: int = 0
    deleted: int = 0
    in_other_datasets: int = 0  # left alone: another Dataset uses them
    resumed: int = 0  # actions an interrupted run had begun, finished by this one
    refused: str | None = None  # preview only: why the run would refuse (the limits)
    recovered_items: int | None = None  # provenance rebuilt from a Folder listing

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_json(),
            "preview": self.preview,
            "runState": not self.no_state,
            **({"unchanged": self.unchanged} if self.preview else {}),
            "added": self.added,
            "updated": self.updated,
            "contentChanged": self.content_changed,
            "contentNotRefreshed": self.content_not_refreshed,
            "repointed": self.repointed,
            "moves": self.moves,
            "reimported": self.reimported,
            "goneFromBucket": self.gone,
            "keptInEncord": self.kept,
            "unlinked": self.unlinked,
            "deleted": self.deleted,
            "usedByOtherDatasets": self.in_other_datasets,
            "resumedActions": self.resumed,
            "recoveredFromFolder": self.recovered_items,
            **({"refused": self.refused} if self.preview else {}),
        }

    def summary(self) -> str:
        if self.no_state:
            return "mirror: no run state: everything is new"
        would = "would " if self.preview else ""
        p = self.policy
        lines = [
            f"mirror (deletions: {p.deletions}, changes: {p.changes}, renames: {p.renames}):"
            + (f" {self.unchanged} unchanged," if self.preview else "")
            + f" {would}add {self.added}, {would}update {self.updated},"
            f" {would}re-point {self.repointed}, {would}reimport {self.reimported},"
            f" {would}unlink {self.unlinked}, {would}delete {self.deleted}"
        ]
        if self.recovered_items is not None:
            lines.append(
                f"  no provenance in the run state: {self.recovered_items} item(s) read from "
                "the Files folder (without ETags: none can be found changed or moved this time)"
            )
        lines += [f"  re-point: {move['from']} → {move['to']}" for move in self.moves]
        if self.repointed > len(self.moves):
            lines.append(f"  … and {self.repointed - len(self.moves)} more moves")
        if self.content_not_refreshed:
            lines.append(
                f"  content changed, media not refreshed: {self.content_not_refreshed} item(s)"
                " (their metadata is updated; `--changes reimport` replaces them, losing"
                " their annotations)"
            )
        if self.reimported:
            lines.append(
                f"  reimport: {self.reimported} item(s) {would}replaced by new ones; annotations"
                " on the old items are lost with them"
            )
        if self.kept:
            lines.append(
                f"  deleted in the bucket, kept in Encord: {self.kept} item(s)"
                " (`--deletions unlink` or `delete` removes them)"
            )
        if self.in_other_datasets:
            lines.append(
                f"  used by another Dataset, left in the Files folder: {self.in_other_datasets}"
            )
        if self.refused:
            lines.append(f"  the run would refuse: {self.refused}")
        if self.resumed:
            lines.append(f"  finished {self.resumed} action(s) an interrupted run had begun")
        return "\n".join(lines)


class Classifier:
    """Sorts the scan's entries not yet in Encord as they stream past (see `diff.classify`):
    yields those to upload now, holds the rest in the state, counts all in the report.
    `scan=None`: `ingest plan`'s preview, which also counts what is already in Encord."""

    def __init__(
        self, state: RunState, folder: str, scan: int | None, report: MirrorReport
    ) -> None:
        self._state, self._folder, self._scan, self._report = state, folder, scan, report
        self._active = state.has_mirrored(folder)  # nothing to compare with on a first sync

    def __call__(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        state, folder, report = self._state, self._folder, self._report
        for entry in entries:
            if self._scan is None:
                state.preview_seen(entry.title)
                if state.is_imported(folder, entry.fingerprint):
                    report.unchanged += 1
                    yield entry
                    continue
            if not self._active:
                report.added += 1
                yield entry
                continue
            prior = state.prior_by_title(folder, entry.title)
            signature = entry_signature(entry)
            elsewhere = prior is None and state.signature_elsewhere(folder, signature, entry.title)
            change = classify(entry, prior, elsewhere)
            if change is Change.CONTENT:
                report.content_changed += 1
            if holds(change, report.policy):
                held = Held(
                    entry.fingerprint,
                    entry.title,
                    change,
                    signature,
                    prior.item_uuid if prior else None,
                )
                state.hold(folder, self._scan, held)
                continue
            if change is Change.CONTENT:
                report.content_not_refreshed += 1
                report.updated += 1
            elif change is Change.UPDATE:
                report.updated += 1
            else:  # an ADD, or a MOVE with `renames: ignore`
                report.added += 1
            yield entry


class Decisions(NamedTuple):
    """What `mirror` is to do after a scan (`decide`)."""

    moves: list[tuple[Prior, Held]]
    reimports: list[Held]
    unpaired: list[Held]  # held entries to add after all

    def change_nothing(self, report: MirrorReport) -> bool:
        """Whether carrying them out asks nothing of Encord: no move, no reimport, no held
        entry to add, and nothing gone (`report.gone`, which `decide` counted)."""
        return not (self.moves or self.reimports or self.unpaired or report.gone)


def decide(state: RunState, folder: str, scan: int | None, report: MirrorReport) -> Decisions:
    """After the scan: the decisions, with the report's counts of what is gone and what
    happens to it, the limits checked (nothing changed yet)."""
    policy = report.policy
    candidates = state.held(folder, scan, Change.MOVE.value)
    reimports = state.held(folder, scan, Change.CONTENT.value)
    moves: list[tuple[Prior, Held]] = []
    if candidates:
        signatures = {held.signature for held in candidates if held.signature}
        moves = pair_moves(candidates, state.gone(folder, scan, signatures))
    moved = {prior.item_uuid for prior, _ in moves}
    paired = {held.fingerprint for _, held in moves}
    unpaired = [held for held in candidates if held.fingerprint not in paired]
    fates = Counter(
        removal(prior, policy) for prior in state.gone(folder, scan) if prior.item_uuid not in moved
    )
    removals = Removals(unlink=fates["unlink"], delete=fates["delete"], reimport=len(reimports))
    check_limits(removals, state.mirrored_count(folder), state.scanned_count(folder, scan), policy)
    report.gone = sum(fates.values())
    report.kept = fates["keep"]
    report.added += len(unpaired)
    if report.preview:
        report.repointed = len(moves)
        report.moves = [_move(prior, held) for prior, held in moves[:SHOWN_MOVES]]
        report.reimported = len(reimports)
        report.unlinked, report.deleted = fates["unlink"], fates["delete"]
    return Decisions(moves, reimports, unpaired)


def mirror(
    client: EncordClient,
    state: RunState,
    folder: StorageFolder,
    dataset: Dataset,
    scan: int,
    report: MirrorReport,
    decisions: Decisions,
) -> Iterator[Entry]:
    """Carry out the decisions for this scan (`decide`); return the held entries that still
    need uploading (unpaired move candidates, and the replacements of reimported items)."""
    name = folder.name
    moves, reimports, unpaired = decisions
    actions = _Actions(client, state, folder, dataset, report)
    for prior, held in moves:
        actions.repoint(prior, held)
    actions.remove_gone(scan)
    released = [held.fingerprint for held in unpaired]
    for held in reimports:
        actions.reimport(held)
        released.append(held.fingerprint)
    return state.held_entries(name, released)


@contextmanager
def preview(
    settings: IngestSettings,
) -> Iterator[tuple[Callable[[Iterable[Entry]], Iterator[Entry]], Callable[[], MirrorReport]]]:
    """For `ingest plan`: (a pass-through that classifies the listed entries, the report of
    what a run would do), from the run state in the output directory, read only (temporary
    tables). Without a run state, or one without this folder, everything is new."""
    report = MirrorReport(Policy.from_settings(settings), preview=True)
    path = settings.output_dir / STATE_FILE
    if not path.exists():
        report.no_state = True
        yield (lambda entries: iter(entries)), lambda: report
        return
    with RunState(path) as state:
        folders = [settings.folder] if settings.folder else state.mirrored_folders()
        if len(folders) != 1 or not state.has_mirrored(folders[0]):
            report.no_state = True
            yield (lambda entries: iter(entries)), lambda: report
            return
        folder = folders[0]
        state.start_preview()

        def finish() -> MirrorReport:
            try:
                decide(state, folder, None, report)
            except MassDeleteRefused as refused:
                report.refused = str(refused)
            return report

        yield Classifier(state, folder, None, report), finish


def recover_provenance(client: EncordClient, state: RunState, folder: StorageFolder) -> int:
    """For a run state without provenance (lost, or older than mirroring): one paged listing
    of the Files folder, each item's name as its title. Returns how many items it found."""
    found = 0

    def store(listing: Iterator[FolderItem]) -> int:
        nonlocal found

        def items() -> Iterator[tuple[str, str, tuple[str, ...]]]:
            nonlocal found
            for item_uuid, name, url, _created in listing:
                found += 1
                yield item_uuid, name, (url,) if url else ()

        state.seed_mirrored(folder.name, items())
        return found

    return client.index_folder(folder, store)


def _move(prior: Prior, held: Held) -> dict[str, str]:
    return {"from": prior.title, "to": held.title, "item": prior.item_uuid}


class _Actions:
    """Each change to Encord: intent recorded, Encord asked, done recorded."""

    def __init__(
        self,
        client: EncordClient,
        state: RunState,
        folder: StorageFolder,
        dataset: Dataset,
        report: MirrorReport,
    ) -> None:
        self._client, self._state, self._folder = client, state, folder
        self._dataset, self._report = dataset, report

    def _data_hashes(self, items: Iterable[tuple[str, str]]) -> list[str]:
        """The Dataset's rows backed by the (item uuid, title) pairs: one title-filtered
        request per item, never the whole Dataset (removals are few: see `maxDeletes`)."""
        return [
            data_hash
            for item_uuid, title in items
            for data_hash in self._client.rows_backed_by(self._dataset, item_uuid, title)
        ]

    def _begin(self, item_uuid: str, action: str, detail: dict[str, Any]) -> None:
        if self._state.begin_action(self._folder.name, item_uuid, action, detail):
            self._report.resumed += 1

    def repoint(self, prior: Prior, held: Held) -> None:
        entry = next(self._state.held_entries(self._folder.name, [held.fingerprint]), None)
        if entry is None:  # already re-pointed by an interrupted run that recorded it
            return
        self._begin(prior.item_uuid, "repoint", {"from": prior.title, "to": entry.title})
        self._client.repoint(
            prior.item_uuid, prior.urls, entry.urls, entry.title, entry.client_metadata
        )
        self._state.finish_repoint(self._folder.name, prior.item_uuid, entry)
        self._report.repointed += 1
        if len(self._report.moves) < SHOWN_MOVES:
            self._report.moves.append(_move(prior, held))

    def remove_gone(self, scan: int) -> None:
        self.remove(self._state.gone(self._folder.name, scan))

    def remove(self, gone: Iterable[Prior]) -> None:
        """Unlink or delete, in batches, the items the policy removes."""
        policy = self._report.policy
        batch: list[tuple[str, str, str]] = []
        for prior in gone:
            action = removal(prior, policy)
            if action in ("unlink", "delete"):
                batch.append((prior.item_uuid, prior.title, action))
            if len(batch) >= REMOVE_BATCH_SIZE:
                self._remove(batch)
                batch = []
        self._remove(batch)

    def _remove(self, batch: list[tuple[str, str, str]]) -> None:
        if not batch:
            return
        name, dataset_hash = self._folder.name, self._dataset.dataset_hash
        for item_uuid, _, action in batch:
            self._begin(item_uuid, action, {})
        self._client.unlink(
            self._dataset, self._data_hashes((item_uuid, title) for item_uuid, title, _ in batch)
        )
        unlinked = [item_uuid for item_uuid, _, action in batch if action == "unlink"]
        self._state.finish_removal(name, dataset_hash, unlinked, "unlink", deleted=False)
        self._report.unlinked += len(unlinked)
        deletable, missing, kept = [], [], []
        for item_uuid, _, action in batch:
            if action != "delete":
                continue
            item = self._client.storage_item(item_uuid)
            if item is None:  # deleted already (by an interrupted run)
                missing.append(item_uuid)
            elif self._client.datasets_using(item):
                kept.append(item_uuid)
            else:
                deletable.append(item_uuid)
        self._client.delete_items(self._folder, deletable)
        deleted = deletable + missing
        self._state.finish_removal(name, dataset_hash, deleted, "delete", deleted=True)
        self._state.finish_removal(name, dataset_hash, kept, "delete", deleted=False)
        self._report.deleted += len(deleted)
        self._report.in_other_datasets += len(kept)

    def reimport(self, held: Held) -> None:
        """Replace the item of a changed object: it is deleted (with its annotations) so the
        upload imports the new content, unless another Dataset uses it."""
        assert held.item_uuid is not None
        name, item_uuid = self._folder.name, held.item_uuid
        self._begin(item_uuid, "reimport", {"title": held.title})
        item = self._client.storage_item(item_uuid)
        if item is not None:
            ours = self._data_hashes([(item_uuid, held.title)])
            if self._client.datasets_using(item) > (1 if ours else 0):
                # Released as a metadata update: the upload skips its known URL(s).
                self._state.finish_action(name, item_uuid, "reimport")
                self._report.in_other_datasets += 1
                self._report.content_not_refreshed += 1
                self._report.updated += 1
                return
            self._client.unlink(self._dataset, ours)
            self._client.delete_items(self._folder, [item_uuid])
        self._state.finish_removal(
            name, self._dataset.dataset_hash, [item_uuid], "reimport", deleted=True
        )
        self._report.reimported += 1


def remove_items(
    client: EncordClient,
    state: RunState,
    folder: StorageFolder,
    dataset: Dataset,
    gone: Iterable[Prior],
    report: MirrorReport,
) -> None:
    """Keep, unlink or delete items gone from the bucket under the report's policy, as
    `mirror` does with a scan's (`ingest watch`: the items of a batch's removed keys), each
    counted in the report. The caller checks the limits first."""

    def counted(priors: Iterable[Prior]) -> Iterator[Prior]:
        for prior in priors:
            report.gone += 1
            report.kept += removal(prior, report.policy) == "keep"
            yield prior

    _Actions(client, state, folder, dataset, report).remove(counted(gone))
