"""Stage: dataset. Link the uploaded items to the Dataset, in batches, each recorded once done.

A kill between linking a batch and recording it only means the rerun links it again, which
Encord skips as duplicates.

Batch size: Encord documents no cap on `link_items` (its guide links a whole folder's items
in one call); its documented bound on one operation is 10,000 data units ("at one time",
`../shared/notes/encord.md` §1.4b), so a batch holds that many (~400 KB of UUIDs). A batch
Encord refuses as too large (HTTP 413) is linked in halves instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from encord.dataset import Dataset
from encord.exceptions import PayloadTooLargeError

from ingest.encord.client import EncordClient
from ingest.errors import UserError
from ingest.state import RunState

LINK_BATCH_SIZE = 10_000


def link_uploaded(
    client: EncordClient,
    state: RunState,
    dataset: Dataset,
    folder: str,
    scan: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Link every item of the scan not yet linked to `dataset`; return how many were linked
    (`progress` is told the running total after each batch)."""
    linked = 0
    for batch in state.unlinked_items(folder, scan, dataset.dataset_hash, LINK_BATCH_SIZE):
        for accepted in _linked_in_parts(client, dataset, batch):
            state.record_links(dataset.dataset_hash, accepted)
            linked += len(accepted)
            if progress is not None:
                progress(linked)
    return linked


def _linked_in_parts(
    client: EncordClient, dataset: Dataset, batch: list[str]
) -> Iterator[list[str]]:
    """Link `batch`, halving any part Encord finds too large; yields each part once linked."""
    parts = [batch]
    while parts:
        part = parts.pop()
        try:
            client.link(dataset, part)
        except PayloadTooLargeError:
            if len(part) == 1:
                raise UserError(
                    f"Encord refused to link one item to Dataset {dataset.title!r} as too "
                    "large (HTTP 413); rerun to retry"
                ) from None
            half = len(part) // 2
            parts += [part[half:], part[:half]]  # the first half is linked first
            continue
        yield part
