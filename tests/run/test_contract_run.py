"""`ingest run` held to what Encord promises, worst case: the real SDK against the sandbox.

Each test holds whatever reading of Encord's contract is strictest: a job's `items_with_names`
empty (only what it *added* is promised), jobs refused above a size with HTTP 413, a kill
between Encord creating a job and the run recording it.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from encord.exceptions import PayloadTooLargeError
from encord.orm.storage import UploadLongPollingState

from demo.samples import SampleObject, dicom, png
from ingest.encord import client as client_module
from ingest.encord import upload
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

ITEMS = "/v2/public/storage/folders/*/items"


@pytest.fixture
def only_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strictest reading of `items_with_names`: it never names anything."""
    monkeypatch.setattr(
        UploadLongPollingState, "items_with_names", property(lambda self: []), raising=False
    )


def _requests(sandbox: Sandbox) -> int:
    return len(sandbox.exchanges())


def _listing_pages(sandbox: Sandbox) -> int:
    return sum(
        1 for e in sandbox.exchanges() if e.method == "GET" and fnmatch.fnmatchcase(e.path, ITEMS)
    )


def test_a_rerun_after_lost_state_costs_pages_not_entries(
    encord_ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    bucket: Bucket,
    tmp_path: Path,
    only_added: None,
) -> None:
    costs = {}
    for count in (10, 60):
        bucket.put(new_images(count, folder=f"batch-{count}"))
        assert encord_ingest("run").code == 0
        (tmp_path / "out/state.sqlite").unlink()
        before, pages_before = _requests(sandbox), _listing_pages(sandbox)

        rerun = encord_ingest("run", "--json")

        assert rerun.code == 0, rerun.stdout + rerun.stderr
        assert rerun.json()["entries"]["failed"] == 0
        assert rerun.json()["verify"]["missing"] == rerun.json()["verify"]["extra"] == 0
        costs[count] = (_requests(sandbox) - before, _listing_pages(sandbox) - pages_before)
    # 60 more entries cost no request more than 10 did (one job, one page of listing each).
    assert costs[60][0] <= costs[10][0] + 1, costs
    assert costs[60][1] == costs[10][1] <= 3, costs
    assert folder_item_names(sandbox, key_pair) == dataset_titles(sandbox, key_pair)


def test_first_run_unchanged_rerun_and_new_objects_hold_under_only_added(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket, only_added: None
) -> None:
    assert encord_ingest("run").code == 0
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
    before = _listing_pages(sandbox)

    unchanged = encord_ingest("run", "--json")
    assert unchanged.code == 0 and unchanged.json()["jobsStarted"] == []
    bucket.put(new_images(3))
    grown = encord_ingest("run", "--json")

    assert grown.code == 0, grown.stderr
    assert grown.json()["linked"] == 3
    titles = sorted(CORPUS_TITLES + [f"new/img-{i:03d}.png" for i in range(3)])
    assert dataset_titles(sandbox, key_pair) == titles == folder_item_names(sandbox, key_pair)
    assert _listing_pages(sandbox) - before >= 2  # the verify listings, and the match


def test_jobs_respect_max_job_entries_and_a_413_splits_by_itself(
    encord_ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    bucket: Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = client_module.EncordClient.start_upload
    refused = []

    def capped(self, folder, integration_id, items, what):
        count = sum(
            len(getattr(items, kind))
            for kind in (
                "images",
                "videos",
                "audio",
                "text",
                "pdf",
                "nifti",
                "image_groups",
                "dicom_series",
            )
        )
        if count > 4:
            refused.append(count)
            raise PayloadTooLargeError("413 Request Entity Too Large")
        return start(self, folder, integration_id, items, what)

    monkeypatch.setattr(client_module.EncordClient, "start_upload", capped)

    outcome = encord_ingest("run", "--max-job-entries", "9", "--json")

    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert refused == [9, 5, 8]  # 17 entries: 9 + 8; 9 → 4 + 5, 5 → 2 + 3; 8 → 4 + 4
    notes = outcome.json()["uploadNotes"]
    assert len(notes) == 3 and all("HTTP 413" in note for note in notes)
    assert len(jobs_started(sandbox)) == 5
    assert (
        dataset_titles(sandbox, key_pair) == CORPUS_TITLES == folder_item_names(sandbox, key_pair)
    )


def test_a_kill_inside_the_job_start_window_leaves_one_item_per_entry(
    encord_ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    only_added: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both jobs take 2 s a unit, so the orphan is still importing when it is resubmitted
    # (each job's duplicate check finds nothing yet) and, started first, it has finished
    # when the rerun lists the folder after its own job: the rerun finds and deletes the
    # doubles. (An orphan slower than its resubmission outlives ORPHAN_WAIT_SECONDS, which
    # this test sets to 0: that is left to the next run's check.)
    sandbox.inject_faults({"job": {"unitDelaySeconds": 2.0}, "count": 2})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # Encord created the job; its id never reaches the state

    with monkeypatch.context() as patch:
        patch.setattr(upload.RunState, "record_job", killed)
        assert encord_ingest("run").code == 130
    assert len(jobs_started(sandbox)) == 1
    monkeypatch.setattr(upload, "ORPHAN_WAIT_SECONDS", 0)  # don't wait: resubmit at once

    rerun = encord_ingest("run", "--json")

    assert rerun.code == 0, rerun.stdout + rerun.stderr
    assert any("interrupted" in note for note in rerun.json()["uploadNotes"])
    assert len(jobs_started(sandbox)) == 2
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
    assert folder_item_names(sandbox, key_pair) == CORPUS_TITLES  # one item per entry
    assert rerun.json()["verify"]["folder"]["duplicate"] == 0
    assert rerun.json()["duplicatesDeleted"] > 0  # the doubles were made, and removed


def test_a_rerun_waits_for_the_orphaned_job_instead_of_resubmitting(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.inject_faults({"job": {"unitDelaySeconds": 0.1}, "count": 1})
    monkeypatch.setattr(upload, "ORPHAN_POLL_SECONDS", 0.2)
    with monkeypatch.context() as patch:
        patch.setattr(
            upload.RunState, "record_job", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
        )
        assert encord_ingest("run").code == 130

    rerun = encord_ingest("run", "--json")

    assert rerun.code == 0, rerun.stdout + rerun.stderr
    assert len(jobs_started(sandbox)) == 1  # the orphan's items were taken, nothing resubmitted
    assert (
        folder_item_names(sandbox, key_pair) == CORPUS_TITLES == dataset_titles(sandbox, key_pair)
    )


def test_verify_reports_a_duplicate_item_in_the_folder(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    from tests.run.support import sdk_client

    assert encord_ingest("run").code == 0
    client = sdk_client(sandbox, key_pair)
    [folder] = [f for f in client.list_storage_folders() if f.name == "imports"]
    [integration] = client.get_cloud_integrations()
    job = folder.add_private_data_to_folder_start(
        integration.id,
        {
            "images": [
                {"objectUrl": bucket.url("images/cats/cat-1.png"), "title": "images/cats/cat-1.png"}
            ]
        },
    )
    folder.add_private_data_to_folder_get_result(job)

    verify = encord_ingest("verify", "--json")

    assert verify.code == 1
    assert verify.json()["folder"]["duplicate"] == 1


def test_an_unchanged_rerun_reuses_the_exact_folder_index_and_verify_lists_the_folder(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    from tests.run.support import sdk_client

    first = encord_ingest("run", "--json")
    assert first.code == 0 and first.json()["verify"]["compared"] is True
    pages, before = _listing_pages(sandbox), len(sandbox.exchanges())
    rerun = encord_ingest("run", "--json")
    assert rerun.code == 0 and rerun.json()["verify"]["folder"]["items"] == len(CORPUS_TITLES)
    # One look-up each per run: the mirror step's folder and Dataset are verify's too.
    paths = [e.path.split("?")[0] for e in sandbox.exchanges()[before:] if e.method == "GET"]
    assert paths.count("/v2/public/storage/folders") == 1, paths
    assert sum(path.endswith("datasets/list") for path in paths) == 1, paths
    assert rerun.json()["verify"]["rows"] == first.json()["verify"]["rows"]
    # The same entries, items and links: the last exact verification holds, uncompared.
    assert rerun.json()["verify"]["compared"] is False
    assert _listing_pages(sandbox) == pages  # nothing touched the folder: its index holds
    assert encord_ingest("verify").code == 0
    assert _listing_pages(sandbox) > pages  # `ingest verify` always lists the folder

    # A change made in Encord behind the state's back, then a run that uploads: it lists
    # the folder again before it compares, and finds the change.
    client = sdk_client(sandbox, key_pair)
    [folder] = [f for f in client.list_storage_folders() if f.name == "imports"]
    [integration] = client.get_cloud_integrations()
    url = bucket.url("images/cats/cat-1.png")
    job = folder.add_private_data_to_folder_start(
        integration.id, {"images": [{"objectUrl": url, "title": "images/cats/cat-1.png"}]}
    )
    folder.add_private_data_to_folder_get_result(job)
    bucket.put([SampleObject("images/cats/cat-9.png", png(3, 3), "image/png")])
    synced = encord_ingest("run", "--json")
    assert synced.code == 1 and synced.json()["verify"]["folder"]["duplicate"] == 1
    assert synced.json()["verify"]["compared"] is True


def _sequence_outputs(bucket: Bucket, allow_write: bool | None) -> None:
    outputs = json.loads(bucket.outputs.read_text())
    outputs.pop("allowWrite", None)
    if allow_write is not None:
        outputs["allowWrite"] = allow_write
    bucket.outputs.write_text(json.dumps(outputs))


@pytest.mark.parametrize("allow_write", [None, False])
def test_image_sequences_are_refused_before_anything_is_sent_without_allow_write(
    encord_ingest: Ingest, sandbox: Sandbox, bucket: Bucket, allow_write: bool | None
) -> None:
    _sequence_outputs(bucket, allow_write)

    outcome = encord_ingest("run", "--group", "sequences/*=imageSequence")

    assert outcome.code == 2
    [line] = outcome.stderr.strip().splitlines()
    assert "allowWrite" in line and "pulumi config set encord-s3:allowWrite true" in line
    assert sandbox.exchanges() == []


def test_image_sequences_are_sent_when_the_stack_allows_writes(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    _sequence_outputs(bucket, True)

    outcome = encord_ingest("run", "--group", "sequences/*=imageSequence")

    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert "sequences/drive-1/" in dataset_titles(sandbox, key_pair)


def test_an_integration_the_user_cannot_see_says_to_share_it(encord_ingest: Ingest) -> None:
    outcome = encord_ingest("run", "--integration", "Someone else's")

    assert outcome.code == 2
    assert "visible to this key's user" in outcome.stderr
    assert "ask its owner to share it" in outcome.stderr


def test_a_folder_holding_two_dicom_series_and_a_series_over_two_folders(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    bucket.put(
        [
            SampleObject("pacs/a.dcm", dicom(1, "1.1"), "application/dicom"),
            SampleObject("pacs/b.dcm", dicom(1, "2.2"), "application/dicom"),
            SampleObject("pacs/c.dcm", dicom(2, "1.1"), "application/dicom"),
            SampleObject("split/one/x.dcm", dicom(2, "3.3"), "application/dicom"),
            SampleObject("split/two/y.dcm", dicom(1, "3.3"), "application/dicom"),
        ]
    )

    outcome = encord_ingest("run")

    assert outcome.code == 0, outcome.stdout + outcome.stderr
    titles = dataset_titles(sandbox, key_pair)
    assert {"pacs/ (series 1.1)", "pacs/ (series 2.2)", "split/ (series 3.3)"} <= set(titles)
    assert "dicom/study-1/series-1/" in titles
    assert titles == folder_item_names(sandbox, key_pair)


def test_a_rerun_after_an_object_left_the_bucket_compares_again(
    encord_ingest: Ingest, bucket: Bucket
) -> None:
    assert encord_ingest("run").code == 0
    assert encord_ingest("run", "--json").json()["verify"]["compared"] is False
    bucket.delete("images/cats/cat-1.png")

    # Nothing is done in Encord under `keep`, but the entries differ: the proof is gone.
    kept = encord_ingest("run", "--deletions", "keep", "--json")

    assert kept.json()["verify"]["compared"] is True
    assert kept.json()["verify"]["extra"] == 1, kept.stdout


def test_a_first_import_into_a_folder_it_creates_is_verified_from_its_jobs_results(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    first = encord_ingest("run", "--json")

    assert first.code == 0, first.stdout + first.stderr
    assert first.json()["verify"]["folder"]["items"] == len(CORPUS_TITLES)
    # The folder was created empty by this run: its jobs' results are all it holds.
    assert _listing_pages(sandbox) == 0
    assert folder_item_names(sandbox, key_pair) == CORPUS_TITLES
    verify = encord_ingest("verify", "--json")
    assert verify.code == 0 and verify.json()["folder"]["items"] == len(CORPUS_TITLES)
    assert _listing_pages(sandbox) > 0  # `ingest verify` lists it


def test_a_first_import_into_a_folder_that_existed_lists_it(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    from tests.run.support import sdk_client

    sdk_client(sandbox, key_pair).create_storage_folder("imports")
    pages = _listing_pages(sandbox)

    first = encord_ingest("run", "--json")

    assert first.code == 0 and first.json()["verify"]["folder"]["items"] == len(CORPUS_TITLES)
    # Not made by the run: listed once to recover what it holds (nothing), once by verify.
    assert _listing_pages(sandbox) == pages + 2
