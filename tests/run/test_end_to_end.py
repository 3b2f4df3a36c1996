"""`python -m ingest run` end to end: moto for AWS, the sandbox for Encord, the real SDK between.

The resulting Dataset is checked through the SDK, as a user would, not through our state.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from encord.http.constants import RequestsSettings

from demo.samples import SampleObject, png
from ingest import context
from ingest.encord import client as encord_client
from ingest.encord.upload import ORPHAN_WAIT_SECONDS
from sandbox import KeyPair, Sandbox, generate_key_pair
from tests.run.support import (
    CORPUS_TITLES,
    EXTERNAL_ID,
    ROLE_ARN,
    UPLOAD_JOBS,
    Bucket,
    Ingest,
    answered,
    dataset_rows,
    dataset_titles,
    folder_item_names,
    jobs_started,
    new_images,
    run_arguments,
    sdk_client,
)

REPO = Path(__file__).resolve().parents[2]


def test_every_data_type_reaches_the_dataset_and_a_rerun_sends_nothing(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    outcome = encord_ingest("run")

    assert outcome.code == 0, outcome.stdout + outcome.stderr
    rows = dataset_rows(sandbox, key_pair)
    assert sorted(row.title for row in rows) == CORPUS_TITLES
    by_title = {row.title: row for row in rows}
    assert by_title["videos/intersection.mp4"].file_link == bucket.url("videos/intersection.mp4")
    assert {row.data_type.value for row in rows} >= {"image", "video", "audio", "dicom", "pdf"}
    assert "matches the bucket: 0 missing, 0 extra" in outcome.stdout
    assert outcome.stderr == ""  # progress is drawn only on a terminal: tests/cli/test_progress.py
    assert len(jobs_started(sandbox)) == 1

    rerun = encord_ingest("run", "--json")

    assert (rerun.code, rerun.stderr) == (0, "")  # --json: no progress line either
    assert rerun.json()["jobsStarted"] == [] and rerun.json()["linked"] == 0
    entries = len(CORPUS_TITLES)
    assert rerun.json()["entries"] == {
        "entries": entries,
        "submitted": entries,
        "uploaded": entries,
        "failed": 0,
        "linked": entries,
    }
    assert len(jobs_started(sandbox)) == 1
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES


def test_new_objects_are_uploaded_and_linked_alone(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    assert encord_ingest("run").code == 0
    added = [obj.key for obj in new_images(3)]
    bucket.put(new_images(3))

    outcome = encord_ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["linked"] == 3
    assert len(jobs_started(sandbox)) == 2
    [manifest] = outcome.json()["scan"]["manifests"]
    sent = json.loads(Path(manifest).read_text())
    assert sorted(entry["title"] for entry in sent["images"]) == added
    assert set(sent) == {"images", "skip_duplicate_urls", "upsert_metadata"}
    assert dataset_titles(sandbox, key_pair) == sorted(CORPUS_TITLES + added)


def test_changed_sidecar_metadata_updates_the_item_in_place(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket
) -> None:
    assert encord_ingest("run").code == 0
    sidecar = SampleObject(
        "images/dogs/dog 1.jpg.metadata.json",
        json.dumps({"camera": "rear", "captured_at": "2026-02-03T04:05:06Z"}).encode(),
        "application/json",
    )
    bucket.put([sidecar])

    outcome = encord_ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert len(jobs_started(sandbox)) == 2  # the changed entry, alone
    [folder] = [
        f for f in sdk_client(sandbox, key_pair).list_storage_folders() if f.name == "imports"
    ]
    [dog] = [item for item in folder.list_items() if item.name == "images/dogs/dog 1.jpg"]
    assert dog.client_metadata == {"camera": "rear", "captured_at": "2026-02-03T04:05:06Z"}
    assert folder_item_names(sandbox, key_pair) == dataset_titles(sandbox, key_pair)


@pytest.fixture
def sidecar_gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the sidecars the runs GET from S3, seen by a botocore event hook on the
    run's own client (whatever reads through it)."""
    keys: list[str] = []
    make_client = context.s3_client

    def counted_client(*args, **kwargs):
        session, client = make_client(*args, **kwargs)

        def record(params, **_):
            if params["Key"].endswith(".metadata.json"):
                keys.append(params["Key"])

        client.meta.events.register("before-parameter-build.s3.GetObject", record)
        return session, client

    monkeypatch.setattr(context, "s3_client", counted_client)
    return keys


def test_a_rerun_reads_only_the_sidecars_that_changed(
    encord_ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    bucket: Bucket,
    sidecar_gets: list[str],
) -> None:
    cat = SampleObject(
        "images/cats/cat-1.png.metadata.json", json.dumps({"camera": "top"}).encode(), "text/json"
    )
    bucket.put([cat])
    dog = "images/dogs/dog 1.jpg.metadata.json"
    assert encord_ingest("run").code == 0
    assert sorted(sidecar_gets) == sorted([cat.key, dog])
    sidecar_gets.clear()

    unchanged = encord_ingest("run", "--json")

    assert unchanged.code == 0, unchanged.stderr
    assert sidecar_gets == []  # both sidecars came from the run state
    assert unchanged.json()["jobsStarted"] == []  # with the metadata they had: nothing new
    assert unchanged.json()["scan"]["sidecars"] == 2

    bucket.put([SampleObject(dog, json.dumps({"camera": "rear"}).encode(), "text/json")])
    changed = encord_ingest("run", "--json")

    assert changed.code == 0, changed.stderr
    assert sidecar_gets == [dog]  # its new ETag: read again, the other one still not
    assert len(jobs_started(sandbox)) == 2  # the changed entry, alone
    [folder] = [
        f for f in sdk_client(sandbox, key_pair).list_storage_folders() if f.name == "imports"
    ]
    items = {item.name: item for item in folder.list_items()}
    assert items["images/dogs/dog 1.jpg"].client_metadata == {"camera": "rear"}
    assert items["images/cats/cat-1.png"].client_metadata == {"camera": "top"}
    assert folder_item_names(sandbox, key_pair) == dataset_titles(sandbox, key_pair)


def test_a_lost_state_file_resubmits_but_duplicates_nothing(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    assert encord_ingest("run").code == 0
    (tmp_path / "out/state.sqlite").unlink()

    outcome = encord_ingest("run", "--json")

    assert outcome.code == 0, outcome.stderr
    assert len(jobs_started(sandbox)) == 2  # everything resubmitted: nothing remembered it
    assert outcome.json()["entries"]["uploaded"] == len(CORPUS_TITLES)
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES


def test_verify_and_status_print_the_guides_outputs(
    encord_ingest: Ingest, sandbox: Sandbox, bucket: Bucket
) -> None:
    run = encord_ingest("run", "--json")
    [job_id] = run.json()["jobsStarted"]

    status = encord_ingest("status", job_id)
    verify = encord_ingest("verify", "--links")  # the file links only when asked for

    assert (status.code, status.stdout) == (0, "Upload completed\n")
    assert verify.code == 0
    assert bucket.url("scans/brain.nii") in verify.stdout.splitlines()
    assert "0 missing, 0 extra" in verify.stdout


def test_failed_units_are_reported_then_retried_alone(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket, tmp_path: Path
) -> None:
    bucket.put([SampleObject("images/broken.png", b"not a png at all", "image/png")])

    outcome = encord_ingest("run")

    assert outcome.code == 1
    assert "  failed: images/broken.png: " in outcome.stdout
    assert "missing: images/broken.png" in outcome.stdout
    [failure] = [
        json.loads(line) for line in (tmp_path / "out/failed-units.jsonl").read_text().splitlines()
    ]
    assert failure["url"] == bucket.url("images/broken.png")
    assert "Expected an image" in failure["error"]
    assert failure["subtask_uuid"]
    status = encord_ingest("status", failure["job_id"])
    assert status.stdout.splitlines()[:2] == [
        "Upload completed",
        "The following URLs failed to upload:",
    ]
    assert bucket.url("images/broken.png") in status.stdout

    bucket.put([SampleObject("images/broken.png", png(), "image/png")])
    retried = encord_ingest("retry", "--json")

    assert retried.code == 0, retried.stdout + retried.stderr
    assert len(retried.json()["jobsStarted"]) == 1 and len(jobs_started(sandbox)) == 2
    assert retried.json()["failedUnits"]["count"] == 0
    assert (tmp_path / "out/failed-units.jsonl").read_text() == ""
    *_, resent = sorted((tmp_path / "out/uploads").glob("*/manifest-*.json"))
    assert json.loads(resent.read_text()) == {
        "images": [{"objectUrl": failure["url"], "title": "images/broken.png"}],
        "skip_duplicate_urls": True,
        "upsert_metadata": True,
    }
    assert dataset_titles(sandbox, key_pair) == sorted([*CORPUS_TITLES, "images/broken.png"])


def test_a_job_that_fails_as_a_whole_exits_2_and_a_rerun_completes(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    sandbox.inject_faults({"job": {"outcome": "ERROR"}, "count": 1})

    outcome = encord_ingest("run")

    assert outcome.code == 2
    error = outcome.stderr
    assert (
        error.count("\n") == 1 and error.startswith("error: Upload failed: ") and "ERROR" in error
    )

    rerun = encord_ingest("run")
    assert rerun.code == 0, rerun.stdout + rerun.stderr
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES


def test_an_unknown_integration_says_how_to_create_it(encord_ingest: Ingest) -> None:
    outcome = encord_ingest("run", "--integration", "No such integration")

    assert outcome.code == 2
    assert outcome.stderr.count("\n") == 1
    assert "'No such integration'" in outcome.stderr
    assert ROLE_ARN in outcome.stderr
    assert "+New integration → AWS S3" in outcome.stderr
    assert EXTERNAL_ID not in outcome.stderr


def test_an_unregistered_key_is_access_denied(
    ingest: Ingest, sandbox: Sandbox, tmp_path: Path
) -> None:
    stranger = generate_key_pair(tmp_path / "stranger").private_key_path

    outcome = ingest("run", "--encord-domain", sandbox.url, "--ssh-key-file", str(stranger))

    assert outcome.code == 2
    assert outcome.stderr.count("\n") == 1
    assert str(stranger) in outcome.stderr and "rejected the key" in outcome.stderr


def test_twenty_percent_faults_still_yield_the_exact_dataset(
    encord_ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    bucket: Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(encord_client, "REQUESTS_SETTINGS", RequestsSettings(backoff_factor=0.02))
    bucket.put(new_images(20))
    sandbox.inject_faults(
        {"route": "/v2/public/*", "status": 503, "fraction": 0.2},
        {"route": "/public*", "status": 500, "fraction": 0.2},
    )

    outcome = encord_ingest("run", "--chunk-size", "5")

    sandbox.clear_faults()
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    failures = [e for e in sandbox.exchanges() if e.status >= 500]
    assert failures  # the faults did happen (no fault in ~30 calls: p ≈ 0.1%)
    assert dataset_titles(sandbox, key_pair) == sorted(
        CORPUS_TITLES + [f"new/img-{i:03d}.png" for i in range(20)]
    )


@pytest.fixture
def cli(sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket, tmp_path: Path):
    """`python -m ingest run ...` as a real process, for tests that kill it."""
    command = [
        sys.executable,
        "-m",
        "ingest",
        *run_arguments("run", bucket, tmp_path / "out"),
        "--encord-domain",
        sandbox.url,
    ]
    env = {**os.environ, "ENCORD_SSH_KEY_FILE": str(key_pair.private_key_path)}

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [*command, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def test_a_killed_run_resumes_its_job_without_duplicates(
    cli, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    # Every unit takes a while, so the job stays PENDING across several polls.
    sandbox.inject_faults({"job": {"unitDelaySeconds": 1.5}, "count": 1})
    process = cli()
    try:
        recorded = _wait_for_progress(
            lambda: _count(tmp_path / "out/state.sqlite", "SELECT count(*) FROM jobs"), process
        )
    finally:
        kill(process)
    assert recorded and process.returncode == -signal.SIGKILL

    rerun = cli()
    stdout, stderr = rerun.communicate(timeout=180)

    assert rerun.returncode == 0, stdout + stderr
    assert "0 job(s) started" in stdout
    assert len(jobs_started(sandbox)) == 1
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES


@pytest.mark.timeout(ORPHAN_WAIT_SECONDS + 300)  # the final run may wait out the orphan window
def test_kills_at_every_stage_still_converge_on_the_exact_dataset(
    cli, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket, tmp_path: Path
) -> None:
    added = new_images(12)
    bucket.put(added)
    sandbox.inject_faults(
        {"job": {"unitDelaySeconds": 0.4}, "count": 1000},
        # Slow job starts keep a run mid-submission long enough to be killed there, every time.
        {
            "route": "/v2/public/storage/folders/*/data-upload-jobs",
            "method": "POST",
            "delaySeconds": 0.5,
        },
    )
    state = tmp_path / "out/state.sqlite"

    # Kill each run the moment it has made progress of this kind since the last one: jobs
    # recorded in the state (each committed before the next start), then Encord's answers
    # (the state commits job results and links with later changes, so they show late).
    # After a job is recorded the run commits the next start's intent and sends it: the
    # pause lets that request reach Encord (its answer takes 0.5 s), for a kill between the
    # intent and the request leaves a start no job answers, which every later run waits
    # out (`ORPHAN_WAIT_SECONDS`) without progress.
    submitting = 0.25
    stages = [
        (lambda: _count(state, "SELECT count(*) FROM jobs"), submitting),
        (lambda: _count(state, "SELECT count(*) FROM jobs"), submitting),  # the rerun's chunks
        (lambda: answered(sandbox, "GET", f"{UPLOAD_JOBS}/*"), 0.0),  # while settling jobs
        # After linking, before verifying.
        (lambda: answered(sandbox, "POST", "/public", "datasetlinkitems"), 0.0),
    ]
    killed = 0
    for progress, pause in stages:
        process = cli("--chunk-size", "4")
        try:
            progressed = _wait_for_progress(progress, process)
            time.sleep(pause)
        finally:
            kill(process)
        killed += progressed and process.returncode == -signal.SIGKILL  # not ended before

    final = cli("--chunk-size", "4")
    # A kill that lands between a job start's intent and its request leaves an intent no
    # job answers: the rerun waits out the orphan window before resubmitting.
    stdout, stderr = final.communicate(timeout=ORPHAN_WAIT_SECONDS + 180)

    # On a loaded machine a run may finish a stage before the kill lands; most must be killed.
    assert killed >= len(stages) - 1
    assert final.returncode == 0, stdout + stderr
    titles = dataset_titles(sandbox, key_pair)
    assert titles == sorted(CORPUS_TITLES + [obj.key for obj in added])
    # Each object imported once, however many jobs.
    assert folder_item_names(sandbox, key_pair) == titles


def _wait_for_progress(count: Callable[[], int], process: subprocess.Popen) -> bool:
    """Wait until `count()` grows; False if the process ended first."""
    baseline = count()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if count() > baseline:
            return True
        time.sleep(0.02)
    return False


def _count(state: Path, query: str) -> int:
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute(query).fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created, or not initialised yet


def test_secrets_reach_no_output_and_no_file(
    ingest: Ingest,
    sandbox: Sandbox,
    key_pair: KeyPair,
    bucket: Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert EXTERNAL_ID in bucket.outputs.read_text()  # the very secret the run was given
    key_text = key_pair.private_key_path.read_text()
    monkeypatch.setenv("ENCORD_SSH_KEY", key_text)  # the key as text, not as a file
    monkeypatch.delenv("ENCORD_SSH_KEY_FILE", raising=False)
    bucket.put([SampleObject("images/broken.png", b"not a png", "image/png")])
    domain = ("--encord-domain", sandbox.url)

    outcomes = [ingest("run", *domain), ingest("run", "--json", *domain)]
    job_id = _first_job(tmp_path / "out/state.sqlite")
    outcomes += [
        ingest("status", job_id, *domain),
        ingest("verify", "--json", *domain),
        ingest("retry", *domain),
        ingest("run", "--integration", "missing", *domain),
    ]

    assert [outcome.code for outcome in outcomes] == [1, 1, 0, 1, 1, 2]
    key_lines = [line for line in key_text.splitlines() if "PRIVATE KEY" not in line]
    secrets = [EXTERNAL_ID, *key_lines]
    for outcome in outcomes:
        for secret in secrets:
            assert secret not in outcome.stdout + outcome.stderr
    files = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert len(files) >= 4  # state, manifest, failed units, differences
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, path


def _first_job(state: Path) -> str:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT job_id FROM jobs ORDER BY rowid").fetchone()[0]
