"""Stage 1, scan: the bucket's objects under the configured prefixes, in key order.

A `Lister` yields one prefix's objects page by page, in key order (S3 ListObjectsV2 order).
`scan()` lists several prefixes in parallel threads and yields them in key order, so the
output is deterministic whatever the timing. Bounded queues keep memory flat: a fast lister
waits for the pipeline instead of buffering the bucket. The lister is an interface so a
faster source (S3 Inventory, a lean XML parser) can replace boto3's paginator.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from datetime import datetime
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ingest.errors import UserError


class ListedObject(NamedTuple):
    """One object as every listing source reports it (ETag without its quotes)."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None


Page = Sequence[ListedObject]
Lister = Callable[[str], Iterable[Page]]

_PAGES_AHEAD = 8  # per prefix: enough to hide a LIST round trip, small enough to stay flat
_DONE = object()


def normalise_prefixes(prefixes: Iterable[str]) -> list[str]:
    """Sorted, without duplicates or prefixes another one already covers (so no key twice)."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept


def scan(lister: Lister, prefixes: Iterable[str], workers: int = 8) -> Iterator[ListedObject]:
    """Every object under `prefixes`, in key order.

    Sorted prefixes that don't cover one another span disjoint, ordered key ranges, so their
    listings concatenated in prefix order are in key order. Up to `workers` prefixes are
    listed ahead in threads, in that same order, so the next prefix is ready when needed.
    """
    chosen = normalise_prefixes(prefixes)
    if len(chosen) == 1 or workers == 1:
        for prefix in chosen:
            for page in lister(prefix):
                yield from page
        return
    stop = threading.Event()
    upcoming = iter(chosen)
    window = deque(_prefetch(lister, prefix, stop) for prefix in islice(upcoming, workers))
    try:
        while window:
            yield from window.popleft()
            following = next(upcoming, None)
            if following is not None:
                window.append(_prefetch(lister, following, stop))
    finally:
        stop.set()  # unblocks producers if the consumer stops early


def _prefetch(lister: Lister, prefix: str, stop: threading.Event) -> Iterator[ListedObject]:
    """Start listing `prefix` in a thread now; the returned iterator yields its objects."""
    pages: queue.Queue = queue.Queue(maxsize=_PAGES_AHEAD)

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in lister(prefix):
                if not put(page):
                    return
            put(_DONE)
        except BaseException as error:  # re-raised in the consuming thread
            put(error)

    threading.Thread(target=produce, name=f"scan:{prefix}", daemon=True).start()
    return _drain(pages)


def _drain(pages: queue.Queue) -> Iterator[ListedObject]:
    while True:
        page = pages.get()
        if page is _DONE:
            return
        if isinstance(page, BaseException):
            raise page
        yield from page


class S3Lister:
    """The boto3 adapter: ListObjectsV2 pages of one prefix. Errors become `UserError`."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def __call__(self, prefix: str) -> Iterator[Page]:
        where = f"s3://{self._bucket}/{prefix}"
        paginator = self._s3.get_paginator("list_objects_v2")
        listed = 0
        new = tuple.__new__  # a NamedTuple's own constructor is a Python-level call per key
        try:
            for response in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                page = [
                    new(
                        ListedObject,
                        (
                            item["Key"],
                            item["Size"],
                            item.get("ETag", "").strip('"'),
                            item.get("LastModified"),
                        ),
                    )
                    for item in response.get("Contents", ())
                ]
                listed += len(page)
                yield page
        except NoCredentialsError:
            raise UserError(
                f"no AWS credentials to list {where}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as error:
            raise UserError(_explain(error, where)) from None
        except BotoCoreError as error:
            raise UserError(f"cannot list {where}: {error}") from None
        if listed == 0:
            raise UserError(
                f"{where} holds no objects: upload data first, or fix the prefix (settings `prefixes` or --prefix)"
            )


def _explain(error: ClientError, where: str) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return (
            f"access denied listing {where} ({code}): your AWS identity needs s3:ListBucket on the "
            "bucket; check AWS_PROFILE or the credentials in the environment"
        )
    if code == "NoSuchBucket":
        return (
            f"bucket of {where} does not exist: check the stack outputs (`bucketName`) and region"
        )
    message = error.response.get("Error", {}).get("Message", "")
    return f"cannot list {where}: {code} {message}".strip()
