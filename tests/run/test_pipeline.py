"""`ingest run` / `retry` bookkeeping over the real scan (moto) with an in-memory Encord."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import run as run_module
from ingest import upload
from ingest.state import RunState
from tests.run.fake_encord import FakeEncord
from tests.run.support import Bucket, Ingest, new_images


@pytest.fixture
def encord(monkeypatch: pytest.MonkeyPatch) -> FakeEncord:
    fake = FakeEncord()
    monkeypatch.setattr(run_module, "connect", lambda domain, key_file: fake)
    return fake


def titles(fake: FakeEncord) -> list[str]:
    return sorted(row.title for row in fake.datasets["Imported"].rows.values())


def test_first_run_imports_every_entry_once(ingest: Ingest, encord: FakeEncord) -> None:
    outcome = ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    summary = outcome.json()
    entries = summary["entries"]["entries"]
    assert entries == sum(summary["scan"]["entries"].values())
    assert summary["entries"] == {
        "entries": entries,
        "submitted": entries,
        "uploaded": entries,
        "failed": 0,
        "linked": entries,
    }
    assert summary["verify"]["missing"] == summary["verify"]["extra"] == 0
    assert len(titles(encord)) == entries
    assert len(encord.jobs) == len(summary["jobsStarted"]) == 1


def test_an_unchanged_rerun_starts_no_job_and_links_nothing(
    ingest: Ingest, encord: FakeEncord
) -> None:
    assert ingest("run").code == 0
    before = titles(encord)

    outcome = ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["jobsStarted"] == []
    assert outcome.json()["linked"] == 0
    assert len(encord.jobs) == 1
    assert titles(encord) == before


def test_new_objects_are_the_only_ones_sent(
    ingest: Ingest, encord: FakeEncord, bucket: Bucket
) -> None:
    assert ingest("run").code == 0
    first = titles(encord)
    bucket.put(new_images(3))

    outcome = ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["linked"] == 3
    sent = json.loads(encord.started_manifests[-1].read_text())
    assert sorted(e["title"] for e in sent["images"]) == [f"new/img-{i:03d}.png" for i in range(3)]
    assert titles(encord) == sorted([*first, *(f"new/img-{i:03d}.png" for i in range(3))])


def test_chunks_become_one_job_each(ingest: Ingest, encord: FakeEncord, bucket: Bucket) -> None:
    bucket.put(new_images(10))

    outcome = ingest("run", "--chunk-size", "4", "--json")

    assert outcome.code == 0, outcome.stderr
    url_counts = [_url_count(json.loads(m.read_text())) for m in encord.started_manifests]
    assert len(encord.jobs) == len(url_counts) > 1
    assert all(count <= 4 for count in url_counts if count > 0)
    assert sum(url_counts) == sum(outcome.json()["scan"]["files"].values())
    assert outcome.json()["verify"]["missing"] == 0


def _url_count(manifest: dict) -> int:
    return sum(
        sum(key.startswith("objectUrl") for key in entry)
        for kind, entries in manifest.items()
        if kind != "skip_duplicate_urls"
        for entry in entries
    )


def test_a_job_started_but_not_recorded_is_resubmitted_without_duplicates(
    ingest: Ingest, encord: FakeEncord, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kill window: Encord created the job, the process died before recording it.
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(upload.RunState, "record_job", killed)
        assert ingest("run").code == 130

    outcome = ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert len(encord.jobs) == 2
    assert outcome.json()["verify"]["missing"] == 0
    assert len(titles(encord)) == len(set(titles(encord))) == outcome.json()["entries"]["entries"]


def test_a_run_killed_while_polling_resumes_the_same_job(
    ingest: Ingest, encord: FakeEncord, monkeypatch: pytest.MonkeyPatch
) -> None:
    encord.pending_polls = 3
    with monkeypatch.context() as patch:
        patch.setattr(upload, "poll_until_finished", _interrupt)
        assert ingest("run").code == 130

    outcome = ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["jobsStarted"] == []
    assert len(encord.jobs) == 1
    assert outcome.json()["verify"]["missing"] == 0


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_failed_units_are_reported_and_retried_alone(
    ingest: Ingest, encord: FakeEncord, bucket: Bucket, tmp_path: Path
) -> None:
    failing = f"https://{bucket.name}.s3.us-east-1.amazonaws.com/videos/intersection.mp4"
    encord.failing_urls.add(failing)

    outcome = ingest("run")

    assert outcome.code == 1
    assert "failed: videos/intersection.mp4: cannot read object" in outcome.stdout
    assert "missing: videos/intersection.mp4" in outcome.stdout
    report = [
        json.loads(line) for line in (tmp_path / "out/failed-units.jsonl").read_text().splitlines()
    ]
    assert [(r["title"], r["url"], r["error"]) for r in report] == [
        ("videos/intersection.mp4", failing, "cannot read object")
    ]
    assert report[0]["subtask_uuid"]

    encord.failing_urls.clear()
    retried = ingest("retry", "--json")

    assert retried.code == 0, retried.stderr
    resent = json.loads(encord.started_manifests[-1].read_text())
    assert [e["title"] for e in resent.get("videos", [])] == ["videos/intersection.mp4"]
    assert sum(len(v) for k, v in resent.items() if k != "skip_duplicate_urls") == 1
    assert retried.json()["failedUnits"]["count"] == 0
    assert (tmp_path / "out/failed-units.jsonl").read_text() == ""


def test_links_go_in_batches(
    ingest: Ingest, encord: FakeEncord, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ingest.dataset.LINK_BATCH_SIZE", 4)
    outcome = ingest("run", "--json")
    assert outcome.code == 0
    total = outcome.json()["entries"]["entries"]
    assert encord.linked_batches == [4] * (total // 4) + ([total % 4] if total % 4 else [])


def test_verify_lists_file_links_and_flags_extra_rows(
    ingest: Ingest, encord: FakeEncord, bucket: Bucket
) -> None:
    assert ingest("run").code == 0
    bucket.delete("audio/call-001.wav")
    assert ingest("run").code == 1  # the Dataset still holds the deleted object

    outcome = ingest("verify")

    assert outcome.code == 1
    assert "extra: audio/call-001.wav" in outcome.stdout
    assert (
        f"https://{bucket.name}.s3.us-east-1.amazonaws.com/images/cats/cat-1.png"
        in outcome.stdout.splitlines()
    )


def test_status_prints_the_guides_messages(
    ingest: Ingest, encord: FakeEncord, monkeypatch: pytest.MonkeyPatch
) -> None:
    encord.pending_polls = 100
    with monkeypatch.context() as patch:
        patch.setattr(upload, "poll_until_finished", _interrupt)
        assert ingest("run").code == 130
    [job_id] = encord.jobs

    assert ingest("status", job_id).stdout == "Upload is still in progress, try again later!\n"
    encord.jobs[job_id].pending_polls = 0
    assert ingest("status", job_id).stdout == "Upload completed\n"
    unknown = ingest("status", "6d0cbd5c-0000-4000-8000-000000000000")
    assert unknown.code == 2 and "is not in" in unknown.stderr


def test_a_second_concurrent_run_is_refused(
    ingest: Ingest, encord: FakeEncord, bucket: Bucket, tmp_path: Path
) -> None:
    assert ingest("run").code == 0
    bucket.put(new_images(1))
    with RunState.in_directory(tmp_path / "out", exclusive=True):
        outcome = ingest("run")
        assert (outcome.code, len(encord.jobs)) == (2, 1)
        assert "another `python -m ingest run` or `retry` is using" in outcome.stderr
        assert ingest("retry").code == 2
        assert ingest("verify").code == 0  # reading is fine meanwhile

    assert ingest("run").code == 0
    assert len(encord.jobs) == 2


def test_objects_left_out_for_bad_metadata_fail_the_run(
    ingest: Ingest, encord: FakeEncord, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("camera: {type: enum, values: [rear]}\n")  # the corpus says "front"

    outcome = ingest("run", "--metadata-schema", str(schema))

    assert outcome.code == 1
    assert "images/dogs/dog 1.jpg" in outcome.stdout
    assert "images/dogs/dog 1.jpg" not in titles(encord)
    assert "matches the bucket" in outcome.stdout  # what was planned did arrive
    assert outcome.stdout.endswith(
        "left out: 1 object(s) whose metadata breaks the schema (listed above); fix them, then rerun\n"
    )
