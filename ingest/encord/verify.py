"""Stage: verify. The Files folder and the Dataset against the entries of the latest scan.

Nothing here depends on one unpaged response (`Dataset.list_data_rows()` returns a whole
Dataset at once, which a million rows would not survive):
- the Folder through its paged item listing (1,000 a page, indexed in the run state): an
  entry whose item is not there is missing, a second item for one entry's URL or title is a
  duplicate, any other item is one nothing planned;
- the Dataset through the link records: every item `link_items` accepted for the Dataset
  (recorded per batch), checked against the scan's entries by title and item: an entry not
  linked is missing, a linked item no entry of the scan has (its object left the bucket, or
  changed) is extra. Rows linked to the Dataset by hand, from other folders, are not seen.

`ingest run` compares with the folder's index in the run state, without listing, when the
index is current: exact at the last verification with nothing done to the folder since, or
built from the jobs' results of a folder the run created (`RunState.folder_created`); and
it compares nothing when the state proves the last exact verification still holds
(`RunState.proven_verification`). `ingest verify` always lists and compares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.files import write_jsonl
from ingest.state import RunState

if TYPE_CHECKING:  # the SDK is not imported for `unchanged_verification` (ingest.cli.sync)
    from encord.dataset import Dataset
    from encord.storage import StorageFolder

    from ingest.encord.client import EncordClient

DIFFERENCES_FILE = "verify-differences.jsonl"
SHOWN_DIFFERENCES = 10
FOLDER_DIFFERENCES = ("not in folder", "duplicate", "unplanned")


@dataclass(frozen=True)
class Verification:
    dataset: str
    dataset_hash: str
    folder: str
    rows: int  # linked items, per the link records
    items: int  # in the Files folder
    missing: int
    extra: int
    folder_differences: dict[str, int]
    sample: list[dict[str, str]]  # the first differences, for the summary
    report: Path
    folder_uuid: str  # "" when the folder does not exist
    # Not compared again: the run state proves the last exact verification still holds.
    unchanged: bool = False

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or any(self.folder_differences.values()))

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "datasetHash": self.dataset_hash,
            "rows": self.rows,
            "missing": self.missing,
            "extra": self.extra,
            "folder": {"name": self.folder, "items": self.items, **self.folder_differences},
            "report": str(self.report),
            "compared": not self.unchanged,
        }

    def summary(self) -> str:
        verdict = "matches the bucket" if self.exact else "DIFFERS from the bucket"
        folder = ", ".join(f"{count} {kind}" for kind, count in self.folder_differences.items())
        lines = [
            f"Dataset {self.dataset!r} ({self.dataset_hash}): {self.rows} data rows, "
            f"{verdict}: {self.missing} missing, {self.extra} extra",
            f"Files folder {self.folder!r}: {self.items} items, {folder}",
        ]
        if self.unchanged:
            lines.append("  (unchanged since the last exact verification, per the run state)")
        lines += [f"  {item['difference']}: {item['title']}" for item in self.sample]
        differences = self.missing + self.extra + sum(self.folder_differences.values())
        if differences > len(self.sample):
            lines.append(f"  … all differences in {self.report}")
        return "\n".join(lines)


def verify(
    client: EncordClient,
    state: RunState,
    dataset: Dataset,
    folder: str,
    scan: int,
    directory: Path,
    progress: Callable[[Iterable], Iterable] | None = None,
    reuse_state: bool = False,
    found_folder: StorageFolder | None = None,
) -> Verification:
    """Read-only: the folder is looked up, never created (a missing one: every entry is
    missing from it). `progress`, if given, wraps the linked rows as they are compared (to
    count them). `reuse_state` (`ingest run`): nothing is compared when the run state proves
    the last exact verification still holds, and the folder's index kept in the state is
    compared with instead of listing the folder again, if it matched at the last
    verification and no upload or mirror action has touched the folder since; `ingest
    verify` always lists and compares. `found_folder`: the folder, if the caller has found
    it already."""
    storage_folder = found_folder if found_folder is not None else client.find_folder(folder)
    folder_uuid = str(storage_folder.uuid) if storage_folder is not None else ""
    report = directory / DIFFERENCES_FILE
    proven = (
        state.proven_verification(folder, folder_uuid, dataset.dataset_hash, scan)
        if reuse_state and storage_folder is not None
        else None
    )
    if proven is not None:
        return unchanged_verification(
            dataset.title, dataset.dataset_hash, folder, folder_uuid, proven, directory
        )
    counts: Counter = Counter()
    items = 0
    if storage_folder is not None:
        kept = state.folder_index_current(folder, folder_uuid) if reuse_state else None
        items = (
            kept
            if kept is not None
            else client.index_folder(
                storage_folder, lambda listed: state.index_folder(folder_uuid, listed)
            )
        )
    rows = 0

    def linked() -> Iterator[tuple[str, str | None]]:
        nonlocal rows
        for row in state.linked_rows(folder, dataset.dataset_hash):
            rows += 1
            yield row

    def counted(differences: Iterator[tuple[str, str]]) -> Iterator[dict[str, str]]:
        for difference, title in differences:
            counts[difference] += 1
            yield {"difference": difference, "title": title}

    def differences() -> Iterator[tuple[str, str]]:
        yield from state.compare_with_dataset(folder, scan, (progress or iter)(linked()))
        yield from state.compare_with_folder(folder, scan, folder_uuid)

    sample = write_jsonl(report, counted(differences()), SHOWN_DIFFERENCES)
    if storage_folder is not None and not counts:
        state.record_verified(folder, folder_uuid, dataset.dataset_hash, scan, rows, items)
    return Verification(
        dataset=dataset.title,
        dataset_hash=dataset.dataset_hash,
        folder=folder,
        rows=rows,
        items=items,
        missing=counts["missing"],
        extra=counts["extra"],
        folder_differences={kind: counts[kind] for kind in FOLDER_DIFFERENCES},
        sample=sample,
        report=report,
        folder_uuid=folder_uuid,
    )


def unchanged_verification(
    title: str,
    dataset_hash: str,
    folder: str,
    folder_uuid: str,
    proven: tuple[int, int],
    directory: Path,
) -> Verification:
    """What `verify` finds when the run state proves the last exact verification still
    holds (`RunState.proven_verification`: `proven` is its rows and items): no differences,
    written as none."""
    report = directory / DIFFERENCES_FILE
    rows, items = proven
    return Verification(
        dataset=title,
        dataset_hash=dataset_hash,
        folder=folder,
        rows=rows,
        items=items,
        missing=0,
        extra=0,
        folder_differences=dict.fromkeys(FOLDER_DIFFERENCES, 0),
        sample=write_jsonl(report, iter(()), SHOWN_DIFFERENCES),
        report=report,
        folder_uuid=folder_uuid,
        unchanged=True,
    )
