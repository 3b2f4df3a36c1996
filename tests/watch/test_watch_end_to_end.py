"""`python -m ingest watch` end to end, as a child process: moto delivers the bucket's S3
events to SQS, the sandbox stands in for Encord, the real SDK between. What the watch left
in Encord is read through the SDK."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from demo.samples import SampleObject, png
from ingest.watch.events import decode_message
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
from tests.watch.support import (
    EventQueues,
    WatchProcess,
    connect_events,
    reconciled,
    start_watch,
)

ODD_KEYS = ["odd/dog 1+2.png", "odd/100% sure.png", "odd/chien-été ü.png"]


def committed_with(field: str, value: str):
    return lambda line: line["event"] == "batch" and line["committed"] and value in line[field]


def linked_at_least(process: WatchProcess, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(b.get("linked", 0) for b in process.batches()) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, process.lines
        process.wait_for(lambda line: line["event"] == "batch", remaining)


def assert_exact(sandbox: Sandbox, key_pair: KeyPair, titles: list[str]) -> None:
    assert dataset_titles(sandbox, key_pair) == sorted(titles)
    names = folder_item_names(sandbox, key_pair)
    assert names == sorted(set(names)) == sorted(titles)  # no duplicate item in the folder


def test_created_overwritten_deleted_and_re_created_objects_end_exact(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    watch = start_watch(bucket, tmp_path / "out", sandbox, key_pair, "--exit-when-idle", "3")
    assert watch.wait_for(reconciled)["exit"] == 0
    jobs_after_reconcile = len(jobs_started(sandbox))

    bucket.put(
        [SampleObject(key, png(4, 4, shade=i), "image/png") for i, key in enumerate(ODD_KEYS)]
    )
    linked_at_least(watch, len(ODD_KEYS))
    bucket.put(
        [SampleObject("images/cats/cat-1.png", png(6, 6, shade=9), "image/png")]
    )  # overwrite
    bucket.delete("videos/intersection.mp4")
    removal = watch.wait_for(committed_with("removed", "videos/intersection.mp4"))
    bucket.delete("images/cats/cat-2.png")
    bucket.put([SampleObject("images/cats/cat-2.png", png(5, 5, shade=3), "image/png")])

    assert watch.finish() == 0, watch.stderr
    batches = watch.batches()
    assert all(b["committed"] for b in batches), batches
    assert sum(b["linked"] for b in batches) == len(ODD_KEYS)
    assert len(jobs_started(sandbox)) > jobs_after_reconcile  # the events did it, not a reconcile
    assert removal["removed"] == ["videos/intersection.mp4"]
    assert not any("images/cats/cat-2.png" in b["removed"] for b in batches[-1:])
    assert events.depth(bucket.aws) == 0  # every message acknowledged
    # Deletions: reported above; the Dataset keeps the item until the deletions policy says.
    assert_exact(sandbox, key_pair, CORPUS_TITLES + ODD_KEYS)


REMOVED_KEYS = [
    "images/cats/cat-1.png",
    "videos/intersection.mp4",
    *(f"dicom/study-1/series-1/slice-{n}.dcm" for n in (1, 2, 10)),  # the whole series
]
REMOVED_TITLES = ["dicom/study-1/series-1/", "images/cats/cat-1.png", "videos/intersection.mp4"]


def delete_objects(bucket: Bucket, keys: list[str]) -> None:
    bucket.aws.client("s3").delete_objects(
        Bucket=bucket.name, Delete={"Objects": [{"Key": key} for key in keys]}
    )


@pytest.mark.parametrize("policy", ["unlink", "delete"])
def test_objects_deleted_while_watching_leave_under_the_deletions_policy(
    bucket: Bucket,
    events: EventQueues,
    sandbox: Sandbox,
    key_pair: KeyPair,
    encord_ingest: Ingest,
    tmp_path: Path,
    policy: str,
) -> None:
    watch = start_watch(
        bucket,
        tmp_path / "out",
        sandbox,
        key_pair,
        "--exit-when-idle",
        "4",
        "--watch-batch-seconds",
        "2",
        "--deletions",
        policy,
        "--max-delete-fraction",
        "0.5",
    )
    watch.wait_for(reconciled)
    delete_objects(bucket, REMOVED_KEYS)

    assert watch.finish() == 0, watch.stderr
    batches = watch.batches()
    assert all(b["committed"] for b in batches), batches
    field = {"unlink": "unlinked", "delete": "deleted"}[policy]
    assert sum(b[field] for b in batches) == 3
    assert watch.lines[-1] == {**watch.lines[-1], "event": "stopped", "removed": 5, field: 3}
    assert events.depth(bucket.aws) == 0
    remaining = sorted(set(CORPUS_TITLES) - set(REMOVED_TITLES))
    assert dataset_titles(sandbox, key_pair) == remaining
    assert folder_item_names(sandbox, key_pair) == (
        CORPUS_TITLES if policy == "unlink" else remaining
    )
    verified = encord_ingest("verify", "--json")
    assert verified.code == 0, verified.stdout + verified.stderr
    assert verified.json()["missing"] == verified.json()["extra"] == 0
    again = encord_ingest("run", "--json", "--deletions", policy)  # the next reconcile
    assert again.code == 0, again.stdout + again.stderr
    mirror = again.json()["mirror"]
    assert mirror["unlinked"] == mirror["deleted"] == 0  # nothing done twice


def test_a_batch_over_the_deletion_limits_removes_nothing(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    watch = start_watch(
        bucket,
        tmp_path / "out",
        sandbox,
        key_pair,
        "--exit-when-idle",
        "6",
        "--watch-batch-seconds",
        "2",
        "--deletions",
        "delete",
    )
    watch.wait_for(reconciled)
    delete_objects(bucket, REMOVED_KEYS)  # 3 of 17 items: over maxDeleteFraction 0.1
    bucket.put(new_images(1, folder="meanwhile"))

    assert watch.finish() == 0, watch.stderr
    refused = [b for b in watch.batches() if "maxDeleteFraction" in b.get("error", "")]
    assert refused and not any(b["deleted"] for b in watch.batches())
    assert dataset_titles(sandbox, key_pair) == sorted([*CORPUS_TITLES, "meanwhile/img-000.png"])
    assert events.depth(bucket.aws) == 0
    assert events.depth(bucket.aws, events.dead_letter_url) >= 1  # the removals' messages


def test_eventbridge_events_of_an_adopted_bucket_sync_alike(
    bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    events = connect_events(bucket, eventbridge=True)
    watch = start_watch(bucket, tmp_path / "out", sandbox, key_pair, "--exit-when-idle", "3")
    watch.wait_for(reconciled)
    bucket.put(
        [SampleObject(key, png(4, 4, shade=i), "image/png") for i, key in enumerate(ODD_KEYS)]
    )
    linked_at_least(watch, len(ODD_KEYS))
    bucket.delete("videos/intersection.mp4")

    assert watch.finish() == 0, watch.stderr
    batches = watch.batches()
    assert all(b["committed"] and not b["undecodable"] for b in batches), batches
    assert any(b["removed"] == ["videos/intersection.mp4"] for b in batches)
    assert events.depth(bucket.aws) == 0
    assert_exact(sandbox, key_pair, CORPUS_TITLES + ODD_KEYS)


def test_a_burst_of_1000_events_is_uploaded_in_few_jobs(
    bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    # A visibility timeout longer than a batch takes, as the stack's queue has.
    events = connect_events(bucket, visibility_seconds=120)
    watch = start_watch(
        bucket,
        tmp_path / "out",
        sandbox,
        key_pair,
        "--exit-when-idle",
        "5",
        "--watch-batch-seconds",
        "30",
    )
    watch.wait_for(reconciled)
    jobs_after_reconcile = len(jobs_started(sandbox))
    burst = new_images(1000, folder="burst")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda obj: bucket.put([obj]), burst))

    assert watch.finish(timeout=240) == 0, watch.stderr
    batches = watch.batches()
    assert sum(b["events"] for b in batches) == 1000
    assert sum(b["linked"] for b in batches) == 1000
    upload_jobs = len(jobs_started(sandbox)) - jobs_after_reconcile
    assert 1 <= upload_jobs <= 4, batches
    assert events.depth(bucket.aws) == 0
    assert_exact(sandbox, key_pair, CORPUS_TITLES + [obj.key for obj in burst])


def test_poison_messages_reach_the_dead_letter_queue(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    watch = start_watch(bucket, tmp_path / "out", sandbox, key_pair, "--exit-when-idle", "5")
    watch.wait_for(reconciled)
    # Every upload job from now on fails as a whole: the new object's batch never commits.
    sandbox.inject_faults({"job": {"outcome": "ERROR"}, "count": 100})
    bucket.aws.client("sqs").send_message(QueueUrl=events.url, MessageBody="this is not JSON")
    bucket.put(new_images(1, folder="doomed"))

    assert watch.finish(timeout=120) == 0, watch.stderr
    batches = watch.batches()
    assert any(b["undecodable"] for b in batches)
    failed = [b for b in batches if "error" in b]
    assert failed and not any(b["committed"] for b in failed)
    # Only S3's test event (set up with the notifications) was acknowledged: it carries nothing.
    assert sum(b["acknowledged"] for b in batches) == 1
    assert "Upload failed" in failed[0]["error"]
    assert events.depth(bucket.aws, events.dead_letter_url) == 2
    assert events.depth(bucket.aws) == 0
    assert watch.lines[-1] == {**watch.lines[-1], "event": "stopped", "deadLetters": 2}


def test_a_poison_key_alone_reaches_the_dead_letter_queue_not_its_batch_mates(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    watch = start_watch(
        bucket,
        tmp_path / "out",
        sandbox,
        key_pair,
        "--exit-when-idle",
        "6",
        "--watch-batch-seconds",
        "3",
    )
    watch.wait_for(reconciled)
    good = new_images(2, folder="mixed")
    poison = SampleObject("mixed/poison.png", b"not an image at all", "image/png")
    bucket.put([*good, poison])  # one batch: Encord fails the poison unit alone

    assert watch.finish(timeout=120) == 0, watch.stderr
    first = next(b for b in watch.batches() if b["keys"] == 3)
    assert first["linked"] == 2 and first["failed"] == 1, first
    assert first["unsettled"] == ["mixed/poison.png"] and not first["committed"]
    assert first["acknowledged"] == first["messages"] - 1  # all but the poison's message
    assert events.depth(bucket.aws) == 0
    assert events.depth(bucket.aws, events.dead_letter_url) == 1
    [dead] = bucket.aws.client("sqs").receive_message(QueueUrl=events.dead_letter_url)["Messages"]
    assert [event.key for event in decode_message(dead["Body"])] == ["mixed/poison.png"]
    assert dataset_titles(sandbox, key_pair) == sorted(CORPUS_TITLES + [o.key for o in good])


def test_kill_9_mid_batch_then_restart_ends_exact(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    watch = start_watch(bucket, out, sandbox, key_pair)
    watch.wait_for(reconciled)
    jobs_after_reconcile = len(jobs_started(sandbox))
    sandbox.inject_faults({"job": {"unitDelaySeconds": 0.2}, "count": 1})  # a slow job
    added = new_images(20, folder="killed")
    bucket.put(added)
    deadline = time.monotonic() + 30
    while len(jobs_started(sandbox)) == jobs_after_reconcile:  # the batch's job is running
        assert time.monotonic() < deadline, watch.lines
        time.sleep(0.05)
    watch.kill()
    assert not watch.batches()  # killed before committing anything

    restarted = start_watch(bucket, out, sandbox, key_pair, "--exit-when-idle", "4")
    assert restarted.finish(timeout=120) == 0, restarted.stderr
    assert events.depth(bucket.aws) == 0
    assert events.depth(bucket.aws, events.dead_letter_url) == 0
    assert_exact(sandbox, key_pair, CORPUS_TITLES + [obj.key for obj in added])


def test_a_batch_longer_than_the_visibility_timeout_keeps_its_messages_hidden(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    # The queue hides a message for VISIBILITY_SECONDS (2 s); the batch's job takes 6 s.
    watch = start_watch(bucket, tmp_path / "out", sandbox, key_pair, "--exit-when-idle", "3")
    watch.wait_for(reconciled)
    jobs_after_reconcile = len(jobs_started(sandbox))
    sandbox.inject_faults({"job": {"unitDelaySeconds": 6}, "count": 1})
    bucket.put(new_images(1, folder="slow"))
    deadline = time.monotonic() + 30
    while len(jobs_started(sandbox)) == jobs_after_reconcile:  # the batch's job is running
        assert time.monotonic() < deadline, watch.lines
        time.sleep(0.05)
    visible = []
    for _ in range(16):  # 4 s into a 6 s job: twice the visibility timeout
        visible.append(visible_messages(bucket, events))
        time.sleep(0.25)

    assert watch.finish() == 0, watch.stderr
    assert visible == [0] * len(visible)  # no receive would have got it mid-batch
    [slow] = [b for b in watch.batches() if b["keys"]]
    assert slow["committed"] and slow["linked"] == 1 and slow["visibilityExtended"] >= 2
    assert not any(b["retried"] for b in watch.batches())
    assert events.depth(bucket.aws) == events.depth(bucket.aws, events.dead_letter_url) == 0


def visible_messages(bucket: Bucket, events: EventQueues) -> int:
    attributes = bucket.aws.client("sqs").get_queue_attributes(
        QueueUrl=events.url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_reconcile_finds_an_object_whose_event_was_dropped(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    watch = start_watch(
        bucket,
        tmp_path / "out",
        sandbox,
        key_pair,
        "--reconcile-every",
        "4s",
        "--exit-when-idle",
        "7",
    )
    watch.wait_for(reconciled)
    s3 = bucket.aws.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket.name)
    notifications.pop("ResponseMetadata")
    s3.put_bucket_notification_configuration(Bucket=bucket.name, NotificationConfiguration={})
    bucket.put(new_images(1, folder="unannounced"))  # no event for this one
    s3.put_bucket_notification_configuration(
        Bucket=bucket.name, NotificationConfiguration=notifications
    )

    assert watch.finish() == 0, watch.stderr
    reconciles = [line for line in watch.lines if line["event"] == "reconcile"]
    assert len(reconciles) >= 2
    assert reconciles[1]["result"]["linked"] == 1
    assert not any(b.get("linked") for b in watch.batches())
    assert_exact(sandbox, key_pair, [*CORPUS_TITLES, "unannounced/img-000.png"])


def test_sigterm_stops_an_idle_watch_at_once(
    bucket: Bucket, events: EventQueues, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    watch = start_watch(bucket, tmp_path / "out", sandbox, key_pair)
    watch.wait_for(reconciled)
    time.sleep(0.5)  # inside a 20 s long poll
    started = time.monotonic()
    watch.signal(signal.SIGTERM)
    assert watch.finish(timeout=10) == 0, watch.stderr
    assert time.monotonic() - started < 3
