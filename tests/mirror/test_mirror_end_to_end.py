"""Mirroring syncs through the real SDK against the sandbox and moto: deletions, changed
content and moves under each policy, the safety limits, kills, and the plan preview."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from demo.samples import SampleObject, png
from ingest.cli.main import main
from sandbox import KeyPair, Sandbox
from tests.run.support import (
    CORPUS_TITLES,
    Bucket,
    Ingest,
    answered,
    dataset_rows,
    dataset_titles,
    folder_item_names,
    jobs_started,
    sdk_client,
)
from tests.run.test_end_to_end import _count, _wait_for_progress, kill

GROUPED = ("--group", "groups/*=imageGroup")
GROUP_TITLE = "groups/ward-a/"


def rows_by_title(sandbox: Sandbox, key_pair: KeyPair) -> dict[str, tuple[str, str]]:
    """title → (data hash, backing item uuid) of the Dataset's rows."""
    return {
        row.title: (row.uid, str(row.backing_item_uuid)) for row in dataset_rows(sandbox, key_pair)
    }


def move(bucket: Bucket, old: str, new: str) -> None:
    s3 = bucket.aws.client("s3")
    s3.copy_object(Bucket=bucket.name, Key=new, CopySource={"Bucket": bucket.name, "Key": old})
    bucket.delete(old)


def synced(encord_ingest: Ingest, *args: str) -> dict:
    outcome = encord_ingest("run", "--json", *args)
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    summary = outcome.json()
    assert summary["verify"]["missing"] == summary["verify"]["extra"] == 0, summary["verify"]
    folder = summary["verify"]["folder"]
    assert folder["not in folder"] == folder["duplicate"] == folder["unplanned"] == 0, folder
    return summary


@pytest.mark.parametrize("policy", ["keep", "unlink", "delete"])
def test_deleted_objects_under_each_policy(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair, policy: str
) -> None:
    synced(encord_ingest)
    bucket.delete("images/cats/cat-1.png")

    outcome = encord_ingest("run", "--json", "--deletions", policy)
    mirror = outcome.json()["mirror"]

    remaining = [t for t in CORPUS_TITLES if t != "images/cats/cat-1.png"]
    assert mirror["goneFromBucket"] == 1
    if policy == "keep":
        assert outcome.code == 1  # the kept row is reported as extra
        assert mirror["keptInEncord"] == 1 and mirror["unlinked"] == mirror["deleted"] == 0
        assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
        assert "deleted in the bucket, kept in Encord: 1" in encord_ingest("run").stdout
        return
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert outcome.json()["verify"]["extra"] == 0
    assert dataset_titles(sandbox, key_pair) == remaining
    names = folder_item_names(sandbox, key_pair)
    if policy == "unlink":
        assert mirror["unlinked"] == 1 and names == CORPUS_TITLES
    else:
        assert mirror["deleted"] == 1 and names == remaining
    again = synced(encord_ingest, "--deletions", policy)["mirror"]
    assert again["unlinked"] == again["deleted"] == 0  # nothing done twice


def test_with_the_state_lost_a_deletion_still_unlinks_the_right_item(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    synced(encord_ingest)
    before = rows_by_title(sandbox, key_pair)
    for path in (tmp_path / "out").glob("state.sqlite*"):
        path.unlink()
    bucket.delete("images/cats/cat-1.png")

    summary = synced(encord_ingest, "--deletions", "unlink")

    mirror = summary["mirror"]
    assert mirror["recoveredFromFolder"] == len(before)  # one paged listing of the folder
    assert mirror["unlinked"] == 1 and mirror["deleted"] == mirror["repointed"] == 0
    assert rows_by_title(sandbox, key_pair) == {
        title: row for title, row in before.items() if title != "images/cats/cat-1.png"
    }
    assert folder_item_names(sandbox, key_pair) == CORPUS_TITLES  # unlinked, not deleted
    again = synced(encord_ingest, "--deletions", "unlink")["mirror"]
    assert again["recoveredFromFolder"] is None and again["unlinked"] == 0


def test_a_renamed_file_keeps_its_item_and_row(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    synced(encord_ingest, "--deletions", "delete")
    before = rows_by_title(sandbox, key_pair)["images/cats/cat-2.png"]
    jobs = len(jobs_started(sandbox))
    move(bucket, "images/cats/cat-2.png", "images/kittens/cat-2.png")

    summary = synced(encord_ingest, "--deletions", "delete")

    assert summary["mirror"]["repointed"] == 1 and summary["mirror"]["deleted"] == 0
    assert summary["verify"]["extra"] == 0
    after = rows_by_title(sandbox, key_pair)
    assert after["images/kittens/cat-2.png"] == before  # same row, same item
    assert "images/cats/cat-2.png" not in after
    assert len(jobs_started(sandbox)) == jobs  # nothing uploaded
    item = sdk_client(sandbox, key_pair).get_storage_item(before[1])
    assert item.url == bucket.url("images/kittens/cat-2.png")


def test_a_group_folder_moved_to_another_prefix_keeps_its_item(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    synced(encord_ingest, *GROUPED)
    before = rows_by_title(sandbox, key_pair)[GROUP_TITLE]
    for frame in ("frame-1.png", "frame-2.png", "frame-10.png"):
        move(bucket, f"groups/ward-a/{frame}", f"groups/ward-b/{frame}")

    summary = synced(encord_ingest, *GROUPED, "--deletions", "delete")

    assert summary["mirror"]["repointed"] == 1
    after = rows_by_title(sandbox, key_pair)
    assert after["groups/ward-b/"] == before and GROUP_TITLE not in after
    # A group has no URL of its own: its frames, in frame order, now point at ward-b.
    group = sdk_client(sandbox, key_pair).get_storage_item(before[1])
    assert [frame.url for frame in group.get_child_items()] == [
        bucket.url(f"groups/ward-b/{frame}")
        for frame in ("frame-1.png", "frame-2.png", "frame-10.png")
    ]


def _overwrite(bucket: Bucket) -> None:
    bucket.put(
        [
            SampleObject("images/cats/cat-3.png", png(9, 9, shade=200), "image/png"),
            SampleObject("videos/intersection.mp4", b"\x00\x00\x00\x18ftypmp42new", "video/mp4"),
            SampleObject("groups/ward-a/frame-2.png", png(5, 5, shade=99), "image/png"),
        ]
    )


CHANGED = ["images/cats/cat-3.png", "videos/intersection.mp4", GROUP_TITLE]
# Replacing CHANGED is 3 of the 15 items (20%): over the default maxDeleteFraction, since a
# reimport loses annotations as a deletion does.
REIMPORT = ("--changes", "reimport", "--max-delete-fraction", "0.25")


@pytest.mark.parametrize("policy", ["metadata", "reimport"])
def test_overwritten_objects_under_each_changes_policy(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair, policy: str
) -> None:
    synced(encord_ingest, *GROUPED)
    before = rows_by_title(sandbox, key_pair)
    _overwrite(bucket)

    if policy == "reimport":
        refused = encord_ingest("run", *GROUPED, "--changes", "reimport")
        assert refused.code == 2 and "reimport 3" in refused.stderr, refused.stderr
        assert rows_by_title(sandbox, key_pair) == before
    changes = REIMPORT if policy == "reimport" else ("--changes", policy)

    summary = synced(encord_ingest, *GROUPED, *changes)

    mirror, after = summary["mirror"], rows_by_title(sandbox, key_pair)
    assert mirror["contentChanged"] == 3
    assert summary["verify"]["extra"] == 0
    if policy == "metadata":
        assert mirror["contentNotRefreshed"] == 3 and mirror["reimported"] == 0
        assert all(after[title] == before[title] for title in CHANGED)
    else:
        assert mirror["reimported"] == 3 and mirror["contentNotRefreshed"] == 0
        assert all(after[title][1] != before[title][1] for title in CHANGED)
        assert sorted(folder_item_names(sandbox, key_pair)) == sorted(after)
    unchanged = set(before) - set(CHANGED)
    assert all(after[title] == before[title] for title in unchanged)


def test_mass_deletion_is_refused_until_allowed(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    synced(encord_ingest)
    gone = ["images/cats/cat-1.png", "images/cats/cat-2.png", "images/cats/cat-3.png"]
    for key in gone:
        bucket.delete(key)
    bucket.put(
        [SampleObject("images/cats/cat-9.png", png(3, 3), "image/png")]
    )  # and one new object
    jobs = len(jobs_started(sandbox))

    refused = encord_ingest("run", "--deletions", "delete")

    assert refused.code == 2
    assert "remove 3 item(s)" in refused.stderr and "--allow-mass-delete" in refused.stderr
    assert "18% of the 17" in refused.stderr and "Nothing was changed" in refused.stderr
    assert len(jobs_started(sandbox)) == jobs  # the new object was not uploaded either
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
    assert folder_item_names(sandbox, key_pair) == CORPUS_TITLES

    synced(encord_ingest, "--deletions", "delete", "--allow-mass-delete")
    expected = sorted({*CORPUS_TITLES, "images/cats/cat-9.png"} - set(gone))
    assert dataset_titles(sandbox, key_pair) == expected


def test_an_item_another_dataset_uses_is_unlinked_not_deleted(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    synced(encord_ingest)
    item_uuid = rows_by_title(sandbox, key_pair)["images/cats/cat-1.png"][1]
    client = sdk_client(sandbox, key_pair)
    other = client.create_dataset("Other", dataset_type=None, create_backing_folder=False)  # type: ignore[arg-type]
    client.get_dataset(other.dataset_hash).link_items([item_uuid])
    bucket.delete("images/cats/cat-1.png")

    summary = synced(encord_ingest, "--deletions", "delete")

    assert summary["mirror"]["usedByOtherDatasets"] == 1 and summary["mirror"]["deleted"] == 0
    assert "images/cats/cat-1.png" not in dataset_titles(sandbox, key_pair)
    assert "images/cats/cat-1.png" in folder_item_names(sandbox, key_pair)
    assert "used by another Dataset" in encord_ingest("run", "--deletions", "delete").stdout


def test_a_deleted_object_put_back_is_imported_again(
    encord_ingest: Ingest, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    synced(encord_ingest)
    s3 = bucket.aws.client("s3")
    key = "images/cats/cat-1.png"
    body = s3.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    bucket.delete(key)
    assert synced(encord_ingest, "--deletions", "delete")["mirror"]["deleted"] == 1
    assert key not in folder_item_names(sandbox, key_pair)

    s3.put_object(Bucket=bucket.name, Key=key, Body=body, ContentType="image/png")  # same ETag
    summary = synced(encord_ingest, "--deletions", "delete")

    assert len(summary["jobsStarted"]) == 1
    assert dataset_titles(sandbox, key_pair) == CORPUS_TITLES
    assert folder_item_names(sandbox, key_pair) == CORPUS_TITLES


def test_the_plan_preview_matches_what_the_run_then_does(
    encord_ingest: Ingest, bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def plan(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        out = ["--outputs", str(bucket.outputs), "--out", str(tmp_path / "out")]
        code = main(["plan", *out, *args])
        return code, capsys.readouterr().out

    assert "no run state: everything is new" in plan()[1]
    synced(encord_ingest)
    bucket.delete("images/cats/cat-1.png")
    move(bucket, "images/cats/cat-2.png", "images/kittens/cat-2.png")
    bucket.put([SampleObject("new/extra.png", png(3, 3), "image/png")])

    code, printed = plan("--json", "--deletions", "unlink")
    assert code == 0, printed
    preview = json.loads(printed)["mirror"]
    summary = synced(encord_ingest, "--deletions", "unlink")["mirror"]

    assert preview["preview"] is True and summary["preview"] is False
    for count in ("added", "updated", "repointed", "reimported", "unlinked", "deleted"):
        assert preview[count] == summary[count], count
    assert (preview["added"], preview["repointed"], preview["unlinked"]) == (1, 1, 1)
    assert preview["unchanged"] == len(CORPUS_TITLES) - 2


SUMMARY = "/v2/public/storage/folders/*/items/*/summary"


def _wait_for_answer(sandbox: Sandbox, method: str, route: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not answered(sandbox, method, route):
        assert time.monotonic() < deadline, f"no answer to {method} {route}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("prepare", "args", "route", "preceding"),
    [
        ("rename", ("--deletions", "delete"), "/v2/public/storage/items/migrate-storage", None),
        ("delete", ("--deletions", "delete"), "/v2/public/storage/folders/*/items/delete", SUMMARY),
        ("overwrite", REIMPORT, "/v2/public/storage/folders/*/items/delete", SUMMARY),
    ],
)
def test_a_kill_during_each_mirror_stage_then_a_rerun_ends_exact(
    cli,
    bucket: Bucket,
    sandbox: Sandbox,
    key_pair: KeyPair,
    tmp_path: Path,
    prepare: str,
    args: tuple[str, ...],
    route: str,
    preceding: str | None,
) -> None:
    first = cli(*GROUPED)
    stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stdout + stderr
    before = rows_by_title(sandbox, key_pair)
    if prepare == "rename":
        move(bucket, "images/cats/cat-2.png", "images/kittens/cat-2.png")
    elif prepare == "delete":
        bucket.delete("images/cats/cat-1.png")
    else:
        _overwrite(bucket)
    # The change itself is slow, so the kill lands between its intent and its completion.
    sandbox.inject_faults({"route": route, "method": "POST", "delaySeconds": 2.0, "count": 1})
    process = cli(*GROUPED, *args)
    try:
        recorded = _wait_for_progress(
            lambda: _count(tmp_path / "out/state.sqlite", "SELECT count(*) FROM mirror_actions"),
            process,
        )
        if preceding is not None:  # the last look before the change; the change follows
            _wait_for_answer(sandbox, "GET", preceding)
            time.sleep(0.5)  # well inside the change's 2 s
    finally:
        kill(process)
    assert recorded and process.returncode == -signal.SIGKILL
    # If the killed run's request reached Encord, wait for its (slow) answer: the rerun then
    # meets a change Encord made that the run state never recorded as done. On a loaded
    # machine the kill can land between the intent and the request: the rerun must cope too.
    deadline = time.monotonic() + 10.0
    while not answered(sandbox, "POST", route) and time.monotonic() < deadline:
        time.sleep(0.1)

    rerun = cli(*GROUPED, *args, "--json")
    stdout, stderr = rerun.communicate(timeout=60)

    assert rerun.returncode == 0, stdout + stderr
    verified = json.loads(stdout)["verify"]
    assert verified["missing"] == verified["extra"] == 0, verified
    after = rows_by_title(sandbox, key_pair)
    assert sorted(folder_item_names(sandbox, key_pair)) == sorted(after)  # no duplicates
    if prepare == "rename":
        assert after["images/kittens/cat-2.png"] == before["images/cats/cat-2.png"]
    elif prepare == "delete":
        assert "images/cats/cat-1.png" not in after
    else:
        assert all(after[title][1] != before[title][1] for title in CHANGED)
