"""Stage: dataset. Link the uploaded items to the Dataset, in batches, each recorded once done.

A kill between linking a batch and recording it only means the rerun links it again, which
Encord skips as duplicates.
"""

from __future__ import annotations

from collections.abc import Callable

from encord.dataset import Dataset

from ingest.encord.client import EncordClient
from ingest.state import RunState

LINK_BATCH_SIZE = 1000


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
        client.link(dataset, batch)
        state.record_links(dataset.dataset_hash, batch)
        linked += len(batch)
        if progress is not None:
            progress(linked)
    return linked
