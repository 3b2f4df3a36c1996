"""The sync stays exact under every reading of what Encord leaves undocumented.

The sandbox defaults to the least forgiving reading of each (see `sandbox/README.md`); here
the journey that depends on them runs under each reading in turn, switched at run time:
first import, unchanged rerun, a rerun after the run state is lost, changed metadata, new
objects, and a deletion mirrored into Encord.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from demo.samples import SampleObject
from sandbox import KeyPair, Sandbox
from tests.run.support import (
    CORPUS_TITLES,
    Bucket,
    Ingest,
    dataset_titles,
    folder_item_names,
    jobs_started,
    new_images,
    sdk_client,
)

READINGS = {
    "strict": {},
    "skipped duplicates reported": {"report_skipped_duplicates": True},
    "concurrent jobs deduplicate": {"dedupe_concurrent_jobs": True},
    "deleting a used item cascades": {"linked_item_deletion": "cascade"},
}


@pytest.mark.parametrize("reading", READINGS.values(), ids=READINGS.keys())
def test_the_sync_is_exact_under_each_reading(
    reading: dict,
    encord_ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    sandbox.set_readings(**reading)

    def exact(*args: str) -> dict:
        outcome = encord_ingest("run", "--json", *args)
        assert outcome.code == 0, outcome.stdout + outcome.stderr
        summary = outcome.json()
        # Exactly one item per planned unit, whatever the reading, in the Folder too.
        assert folder_item_names(sandbox, key_pair) == dataset_titles(sandbox, key_pair)
        return summary

    exact()
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
    assert exact()["jobsStarted"] == []  # unchanged

    shutil.rmtree(tmp_path / "out")  # the run state is lost
    exact()
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES

    metadata = {"camera": "rear", "captured_at": "2026-02-03T04:05:06Z"}
    bucket.put(
        [
            SampleObject(
                "images/dogs/dog 1.jpg.metadata.json",
                json.dumps(metadata).encode(),
                "application/json",
            ),
            *new_images(3),
        ]
    )
    exact()
    [folder] = [
        f for f in sdk_client(sandbox, key_pair).list_storage_folders() if f.name == "imports"
    ]
    [dog] = [item for item in folder.list_items() if item.name == "images/dogs/dog 1.jpg"]
    assert dog.client_metadata == metadata
    with_new = sorted(CORPUS_TITLES + [f"new/img-{i:03d}.png" for i in range(3)])
    assert dataset_titles(sandbox, key_pair) == with_new

    bucket.delete("new/img-000.png")
    summary = exact("--deletions", "delete")
    assert summary["mirror"]["deleted"] == 1
    assert dataset_titles(sandbox, key_pair) == [t for t in with_new if t != "new/img-000.png"]
    assert len(jobs_started(sandbox)) >= 2
