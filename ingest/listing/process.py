"""The fast lister in a child process: listing and planning on two cores.

In one interpreter the listing threads (botocore's request handling, the pages' parsing) and
the planner take turns holding one interpreter lock. `listed_in_child` runs `FastLister`
in a child interpreter (`python -m ingest.listing.process`) with the same bucket, endpoint,
region, credentials and retry settings as the caller's boto3 client, and reads its records
back: compact tuples in batches, `marshal`led through a pipe, which costs the planner a
fraction of parsing the pages itself. The pipe's capacity is the backpressure: the child's
consumer waits when the planner lags, while its listing threads keep spooling pages to disk
(`ingest.listing.spool`), so memory stays flat in both processes.

A command that will list starts the child ahead (`started_ahead`, in `ingest.cli.main`), so
that the child's start-up (an interpreter, botocore) overlaps the caller's own (its imports,
its checks); a command with more to prepare once it knows what to list sends the request
then (`listing_begun`: `ingest run`, before it imports the encord SDK), so that the listing
overlaps the rest. `listed_in_child` takes that child, or starts one.

Protocol on the child's stdin: one JSON request (bucket, prefixes, workers, client
settings, and the caller's client's own credentials when it has them: never on the child's
command line); end of input without a request (a child started ahead and never used) ends
it. On its stdout: frames of a 4-byte little-endian length then `marshal` bytes, either a
list of (key, size, etag, None) tuples (nothing in a plan reads LastModified:
`fast.parse_records`) or, for a `UserError`, its message as a string; a zero length ends
the stream. Any other failure ends the child with its error on stderr.
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from typing import IO, Any

import ingest
from ingest.errors import UserError
from ingest.listing.scan import ListedObject
from ingest.pipes import whole_writes, widened
from ingest.started_ahead import StartedAhead

BATCH = 2000  # records per frame: ~150 KB


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]  # a temporary file
    request: dict[str, Any] | None = None  # sent: the child is listing


@contextmanager
def started_ahead() -> Iterator[None]:
    """The listing child started now, for the next `listed_in_child` to take; ended on the
    way out if none took it."""
    with _ahead.started():
        yield


@contextmanager
def listing_begun(s3: Any, bucket: str, prefixes: list[str], workers: int) -> Iterator[None]:
    """The listing `listed_in_child(s3, bucket, prefixes, workers)` reads, requested now
    (from the child started ahead, or a new one): the child lists, spooling its pages, while
    the caller goes on; ended on the way out if no `listed_in_child` read it."""
    request = _request(s3, bucket, prefixes, workers)
    child = _take(request)
    if child.request is None:
        _send_request(child, request)
    _ahead.hold(child)
    try:
        yield
    finally:
        _ahead.end()


def end_ahead() -> None:
    """End the child started ahead, if not taken (the command lists some other way)."""
    _ahead.end()


def _take(request: dict[str, Any]) -> _Child:
    """The child started ahead, unless it was sent another request; else a new one."""
    child = _ahead.take()
    if child is not None and child.request not in (None, request):
        _end(child)  # listing something else: of no use here
        child = None
    return child or _start()


def _send_request(child: _Child, request: dict[str, Any]) -> None:
    requests = child.process.stdin
    assert requests is not None  # a pipe
    requests.write(json.dumps(request).encode())
    requests.close()
    child.request = request


def child_environment() -> dict[str, str]:
    """This environment, with `ingest` importable by a child `python -m ingest.…` from any
    working directory."""
    root = str(Path(ingest.__file__).resolve().parent.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }


def _start() -> _Child:
    env = child_environment()
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `_end`, after the child)
    child = subprocess.Popen(
        [sys.executable, "-m", "ingest.listing.process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
    )
    assert child.stdout is not None  # a pipe, as asked
    widened(child.stdout)
    return _Child(child, stderr)


def _end(child: _Child) -> None:
    process = child.process
    if process.poll() is None:  # the consumer stopped early, or failed, or never began
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, child.stderr):
        if stream is not None:
            stream.close()


# A child started ahead (`started_ahead`, `listing_begun`), not taken yet.
_ahead: StartedAhead[_Child] = StartedAhead(_start, _end)


def listed_in_child(
    s3: Any, bucket: str, prefixes: list[str], workers: int
) -> Iterator[ListedObject]:
    """`FastLister(s3, bucket, workers).objects(prefixes)`, listed by a child process,
    without LastModified (None)."""
    request = _request(s3, bucket, prefixes, workers)
    child = _take(request)
    records = child.process.stdout
    assert records is not None  # a pipe
    try:
        if child.request is None:
            _send_request(child, request)
        yield from _records(records, lambda: _failure(child.process, child.stderr))
        child.process.wait(timeout=10)  # the stream ended: the child is exiting
    finally:
        _end(child)


def _request(s3: Any, bucket: str, prefixes: list[str], workers: int) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefixes": prefixes,
        "workers": workers,
        "region": s3.meta.region_name,
        "endpoint_url": s3.meta.endpoint_url,
        "max_pool_connections": s3.meta.config.max_pool_connections,
        "retries": s3.meta.config.retries,
        "s3": s3.meta.config.s3,
        "proxies": s3.meta.config.proxies,
        "credentials": _credentials_of(s3),
    }


def _records(stream: Any, failure: Any) -> Iterator[ListedObject]:
    read, new, listed = stream.read, tuple.__new__, repeat(ListedObject)
    while True:
        head = read(4)
        if len(head) < 4:
            raise failure()
        size = int.from_bytes(head, "little")
        if not size:
            return
        frame = read(size)
        if len(frame) < size:  # the child died mid-frame
            raise failure()
        batch = marshal.loads(frame)
        if isinstance(batch, str):
            raise UserError(batch)
        yield from map(new, listed, batch)  # the records are whole: no Python call per key


def _failure(child: subprocess.Popen[bytes], stderr: IO[bytes]) -> OSError:
    child.wait()
    stderr.seek(0)
    error = stderr.read().decode(errors="replace").strip()
    last = error.splitlines()[-1] if error else f"exit code {child.returncode}"
    return OSError(f"listing the bucket failed: {last}")


def _credentials_of(s3: Any) -> dict[str, str]:
    """The client's own credentials, as boto3's client arguments; none when the client
    found them the default way (the child, with the same environment, finds the same)."""
    credentials = s3._request_signer._credentials
    if credentials is None or credentials.method != "explicit":
        return {}
    frozen = credentials.get_frozen_credentials()
    own = {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key}
    if frozen.token:
        own["aws_session_token"] = frozen.token
    return own


def serve(request: dict[str, Any], session: Any = None) -> int:
    """The child: list, and write the records as frames to stdout. `session`: the botocore
    session to make the client with (one that has loaded S3's model already, say)."""
    import botocore.session
    from botocore.config import Config

    from ingest.listing.fast import FastLister, parse_records

    config = Config(
        max_pool_connections=request["max_pool_connections"],
        retries=request["retries"],
        s3=request["s3"],
        proxies=request["proxies"],
    )
    # botocore's own client: what boto3's would be for these calls, without importing boto3
    # (and s3transfer) in the child.
    s3 = (session or botocore.session.Session()).create_client(
        "s3",
        region_name=request["region"],
        endpoint_url=request["endpoint_url"],
        config=config,
        **request["credentials"],
    )
    lister = FastLister(s3, request["bucket"], request["workers"], decode=parse_records)
    objects = lister.objects(request["prefixes"])
    with whole_writes() as out:
        try:
            while batch := list(islice(objects, BATCH)):
                _send(out, marshal.dumps(batch))
        except UserError as error:
            _send(out, marshal.dumps(str(error)))
        _send(out, b"")
    return 0


def _send(out: Any, frame: bytes) -> None:
    out.write(len(frame).to_bytes(4, "little") + frame)


if __name__ == "__main__":
    # Before the request: a child started ahead spends its wait on its own start-up, S3's
    # model (the largest part of making a client) included.
    import botocore.session

    import ingest.listing.fast
    from ingest.exit import exit_now

    botocore_session = botocore.session.Session()
    botocore_session.get_service_model("s3")
    request = sys.stdin.buffer.read()
    if not request:  # started ahead and never used
        exit_now(0)
    try:
        exit_now(serve(json.loads(request), botocore_session))
    except BrokenPipeError:  # the parent stopped reading: nothing left to do
        os._exit(0)
