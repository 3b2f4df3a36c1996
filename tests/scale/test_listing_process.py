"""The fast lister in a child process lists exactly what it lists in this one (LastModified
left out)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import marshal
import os
import signal
import subprocess
import threading
import time

import boto3
import pytest

from ingest.errors import UserError
from ingest.listing import process
from ingest.listing.fast import FastLister
from ingest.listing.process import listed_in_child, started_ahead
from ingest.pipes import PIPE_BYTES
from standins.local_aws import LocalAws
from standins.s3_listing import BUCKET, start_standin

KEYS = [
    "dir/",
    "a//b.jpg",
    "t/tab\there.jpg",
    "x y/ü é.png",
    "%41.jpg",
    "p+q r.jpg",
    'e/<&>".jpg',
    "a.jpg",
    "a/x.jpg",
    "a0.jpg",
    *(f"big/{i:04d} café.png" for i in range(2100)),  # pages, and frames, of their own
]
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def bucket(aws: LocalAws) -> tuple[object, str]:
    s3 = aws.client("s3")
    name = f"child-listing-{next(_numbers)}"
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=b"x")
    return s3, name


@pytest.mark.parametrize("prefixes", [[""], ["big/", "a"]])
def test_the_child_lists_the_same_records_in_the_same_order(bucket, prefixes) -> None:
    s3, name = bucket
    here = [obj._replace(last_modified=None) for obj in FastLister(s3, name, 4).objects(prefixes)]
    assert list(listed_in_child(s3, name, prefixes, 4)) == here
    assert len(here) > 2000


def test_a_listing_error_in_the_child_is_the_same_one_line_error(aws: LocalAws) -> None:
    with pytest.raises(UserError, match=r"bucket of s3://no-such-bucket-here/ does not exist"):
        list(listed_in_child(aws.client("s3"), "no-such-bucket-here", [""], 4))
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="child-listing-empty")
    with pytest.raises(UserError, match=r"s3://child-listing-empty/ holds no objects"):
        list(listed_in_child(s3, "child-listing-empty", [""], 4))


def test_a_consumer_that_stops_early_ends_the_child() -> None:
    with start_standin(2_000_000, prefixes=16) as standin:
        s3 = boto3.client(
            "s3",
            endpoint_url=standin.endpoint_url,
            region_name="eu-west-2",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        listing = listed_in_child(s3, BUCKET, [""], 4)
        assert next(listing).key == "README.txt"
        child = listing.gi_frame.f_locals["child"].process  # type: ignore[attr-defined]  # a generator
        listing.close()  # type: ignore[attr-defined]  # long before 2M keys are listed
        assert child.returncode == -signal.SIGKILL


class _Started:
    """Records the children `ingest.listing.process` starts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        popen = subprocess.Popen

        def start(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
            child = popen(*args, **kwargs)  # type: ignore[call-overload]
            self.children.append(child)
            return child

        monkeypatch.setattr(process.subprocess, "Popen", start)


def test_the_child_started_ahead_is_the_one_that_lists(bucket, monkeypatch) -> None:
    s3, name = bucket
    started = _Started(monkeypatch)
    here = [obj._replace(last_modified=None) for obj in FastLister(s3, name, 4).objects([""])]

    with started_ahead():
        assert len(started.children) == 1  # before anything asks for a listing
        assert list(listed_in_child(s3, name, [""], 4)) == here

    assert len(started.children) == 1
    assert started.children[0].returncode == 0


def test_a_child_started_ahead_and_never_taken_is_ended(monkeypatch) -> None:
    started = _Started(monkeypatch)

    with started_ahead():
        pass

    [child] = started.children
    assert child.returncode is not None  # ended, not left waiting for a request


def test_a_frame_cut_short_is_the_childs_failure_not_a_traceback() -> None:
    # A child that dies in the middle of a frame: its failure (a one-line error), not
    # `marshal`'s error about the half frame.
    whole = marshal.dumps([("a.jpg", 1, "etag", None)])
    cut = io.BytesIO(len(whole).to_bytes(4, "little") + whole[:-3])

    with pytest.raises(OSError, match="listing the bucket failed: the child died"):
        list(process._records(cut, lambda: OSError("listing the bucket failed: the child died")))


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are Linux's")
def test_the_records_pipe_holds_several_frames(monkeypatch) -> None:
    started = _Started(monkeypatch)

    with started_ahead():
        [child] = started.children
        assert child.stdout is not None
        assert fcntl.fcntl(child.stdout.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES


def test_writes_the_pipe_cut_short_lose_no_record(monkeypatch) -> None:
    # With PYTHONUNBUFFERED set (Docker images, CI), the child's `sys.stdout.buffer` is the
    # raw file, whose `write` may write part of a frame: when a signal stops the child while
    # it waits on the full pipe (SIGSTOP and SIGCONT here; a debugger, a profiler or job
    # control alike). Every record must still arrive, in order.
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    with start_standin(150_000, prefixes=4) as standin:
        s3 = boto3.client(
            "s3",
            endpoint_url=standin.endpoint_url,
            region_name="eu-west-2",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        here = [obj._replace(last_modified=None) for obj in FastLister(s3, BUCKET, 4).objects([""])]
        listing = listed_in_child(s3, BUCKET, [""], 4)
        received = [next(listing)]
        child = listing.gi_frame.f_locals["child"].process  # type: ignore[attr-defined]  # a generator
        stop = threading.Event()

        def interrupt() -> None:
            while not stop.wait(0.002):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGSTOP)
                    os.kill(child.pid, signal.SIGCONT)

        interrupter = threading.Thread(target=interrupt)
        interrupter.start()
        try:
            for number, listed in enumerate(listing):
                received.append(listed)
                if not number % 5000:
                    time.sleep(0.02)  # the pipe fills: the child waits in its writes
        finally:
            stop.set()
            interrupter.join()

    assert received == here
