"""`ingest run` / `retry` bookkeeping between the stages, against moto and the Encord sandbox
through the real SDK: chunking, link batches, the kill windows in our own code, the run
lock, and the exit code when objects were left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.cli import status as run_module
from ingest.encord import link as dataset
from ingest.encord import upload
from ingest.encord_format import KINDS
from ingest.state import RunState
from sandbox import KeyPair, Sandbox
from tests.run.support import (
    CORPUS_TITLES,
    Bucket,
    Ingest,
    dataset_titles,
    folder_item_names,
    jobs_started,
    new_images,
)

LINK_ITEMS = "datasetlinkitems"


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _url_count(manifest: dict) -> int:
    return sum(
        sum(key.startswith("objectUrl") for key in entry)
        for kind, entries in manifest.items()
        if kind in KINDS
        for entry in entries
    )


def test_chunks_become_one_job_each(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    bucket.put(new_images(10))

    outcome = encord_ingest("run", "--chunk-size", "4", "--json")

    assert outcome.code == 0, outcome.stderr
    manifests = outcome.json()["scan"]["manifests"]
    url_counts = [_url_count(json.loads(Path(path).read_text())) for path in manifests]
    assert len(jobs_started(sandbox)) == len(outcome.json()["jobsStarted"]) == len(manifests) > 1
    assert all(count <= 4 for count in url_counts)
    assert sum(url_counts) == sum(outcome.json()["scan"]["files"].values())
    assert len(dataset_titles(sandbox, key_pair)) == len(CORPUS_TITLES) + 10


def test_links_go_in_batches(
    encord_ingest: Ingest, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset, "LINK_BATCH_SIZE", 4)

    assert encord_ingest("run").code == 0

    # Each answer lists the rows the batch linked.
    linked = [
        len(exchange.body["response"])
        for exchange in sandbox.exchanges()
        if exchange.query_type == LINK_ITEMS
    ]
    total = len(CORPUS_TITLES)
    assert linked == [4] * (total // 4) + [total % 4]


def test_a_link_batch_refused_as_too_large_is_linked_in_halves(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    sandbox.inject_faults({"route": "/public", "queryType": LINK_ITEMS, "status": 413, "count": 2})

    outcome = encord_ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    calls = [e for e in sandbox.exchanges() if e.query_type == LINK_ITEMS]
    total = len(CORPUS_TITLES)
    # The whole batch, then its first half are refused; the quarter halves and the second
    # half link, first part first.
    assert [e.status for e in calls] == [413, 413, 200, 200, 200]
    assert [len(e.body["response"]) for e in calls[2:]] == [
        total // 4,
        total // 2 - total // 4,
        total - total // 2,
    ]
    assert outcome.json()["linked"] == total
    assert len(dataset_titles(sandbox, key_pair)) == total


def test_a_job_started_but_not_recorded_is_resubmitted_without_duplicates(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kill window: Encord created the job, the process died before recording it.
    with monkeypatch.context() as patch:
        patch.setattr(upload.RunState, "record_job", _interrupt)
        assert encord_ingest("run").code == 130
    assert len(jobs_started(sandbox)) == 1

    outcome = encord_ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    # The rerun found the unrecorded job's items in the folder (its start was recorded as an
    # intent), so it resubmitted nothing.
    assert len(jobs_started(sandbox)) == 1
    assert outcome.json()["verify"]["missing"] == outcome.json()["verify"]["extra"] == 0
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
    assert folder_item_names(sandbox, key_pair) == CORPUS_TITLES  # one item per entry


def test_status_says_a_pending_job_is_still_in_progress(
    encord_ingest: Ingest, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK polls again until the wait is over; a 1 s wait is one poll, the one the
    # sandbox answers PENDING.
    monkeypatch.setattr(run_module, "STATUS_WAIT_SECONDS", 1)
    sandbox.inject_faults({"job": {"pendingPolls": 1}, "count": 1})
    with monkeypatch.context() as patch:
        patch.setattr(upload, "poll_until_finished", _interrupt)
        assert encord_ingest("run").code == 130  # started and recorded the job, never polled
    [started] = jobs_started(sandbox)
    job_id = started.body  # Encord answers a start with the job's id

    assert encord_ingest("status", job_id).stdout == (
        "Upload is still in progress, try again later!\n"
    )
    assert encord_ingest("status", job_id).stdout == "Upload completed\n"
    unknown = encord_ingest("status", "6d0cbd5c-0000-4000-8000-000000000000")
    assert unknown.code == 2 and "is not in" in unknown.stderr


def test_verify_flags_rows_whose_object_left_the_bucket(
    encord_ingest: Ingest, bucket: Bucket
) -> None:
    assert encord_ingest("run").code == 0
    bucket.delete("audio/call-001.wav")

    rerun = encord_ingest("run")
    verify = encord_ingest("verify")

    assert rerun.code == verify.code == 1  # the Dataset still holds the deleted object
    for outcome in (rerun, verify):
        assert "DIFFERS from the bucket: 0 missing, 1 extra" in outcome.stdout
        assert "  extra: audio/call-001.wav" in outcome.stdout.splitlines()


def test_a_second_concurrent_run_is_refused(
    encord_ingest: Ingest, sandbox: Sandbox, bucket: Bucket, tmp_path: Path
) -> None:
    assert encord_ingest("run").code == 0
    bucket.put(new_images(1))
    with RunState.in_directory(tmp_path / "out", exclusive=True):
        outcome = encord_ingest("run")
        assert (outcome.code, len(jobs_started(sandbox))) == (2, 1)
        assert "another `python -m ingest run` or `retry` is using" in outcome.stderr
        assert encord_ingest("retry").code == 2
        assert encord_ingest("verify").code == 0  # reading is fine meanwhile

    assert encord_ingest("run").code == 0
    assert len(jobs_started(sandbox)) == 2


def test_objects_left_out_for_bad_metadata_fail_the_run(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("camera: {type: enum, values: [rear]}\n")  # the corpus says "front"

    outcome = encord_ingest("run", "--metadata-schema", str(schema))

    assert outcome.code == 1
    assert "images/dogs/dog 1.jpg" in outcome.stdout
    assert dataset_titles(sandbox, key_pair) == [
        title for title in CORPUS_TITLES if title != "images/dogs/dog 1.jpg"
    ]
    assert "matches the bucket" in outcome.stdout  # what was planned did arrive
    assert outcome.stdout.endswith(
        "left out: 1 object(s) whose metadata breaks the schema (listed above); fix them, then rerun\n"
    )
