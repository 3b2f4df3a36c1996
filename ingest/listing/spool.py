"""`PageSpool`: pages from one producer thread to one consumer, in order, spilling to disk.

Listings run ahead of the planner: the scan lists up to `workers` prefixes at once but the
planner takes them one after another, in key order. Blocking a producer until the planner
reaches its prefix would serialise the listing (one prefix at a time), and buffering every
page would hold the bucket in memory. So the first few waiting pages stay in memory and the
rest are pickled, compressed (zstd, through pyarrow: several times cheaper than zlib,
and smaller) and appended to an unlinked temporary file, read back in turn:
a listing that runs ahead costs a little disk (see `bench/README.md`), not memory. The listing the
planner is reading does not spill: it waits for the planner, as a bounded queue would.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

IN_MEMORY_PAGES = 4  # per spool: enough to hide a hand-over, small enough to stay flat
_DONE = object()
_SPILLED = object()


class SpoolClosed(Exception):
    """The consumer has gone: the producer should stop."""


class PageSpool:
    """A FIFO of pages; `put` never blocks, `close` discards what is left."""

    def __init__(
        self, decode: Callable[[Any], Any] | None = None, in_memory: int = IN_MEMORY_PAGES
    ) -> None:
        self._decode = decode  # applied by the consumer, so the producer stays cheap
        self._in_memory_limit = in_memory
        self._ready = threading.Condition()
        self._queue: deque[tuple[Any, Any]] = (
            deque()
        )  # (page, None) or (_SPILLED, (offset, length))
        self._in_memory = 0
        self._file: Any = None
        self._end = 0  # the spill file's length
        self._closed = False
        self.finished = False  # the producer is done (its pages may still be waiting)
        self._consumed = False  # being read: past the limit, the producer waits instead

    def put(self, page: Any) -> None:
        """Append a page (any picklable object); raises `SpoolClosed` once the consumer left."""
        with self._ready:
            # The listing being read waits for its reader (spilling would only add work);
            # one further ahead spills, so that it keeps listing.
            while self._consumed and self._in_memory >= self._in_memory_limit:
                if self._closed:
                    raise SpoolClosed
                self._ready.wait()
            if self._closed:
                raise SpoolClosed
            if self._in_memory < self._in_memory_limit:
                self._in_memory += 1
                self._queue.append((page, None))
                self._ready.notify_all()
                return
        # Serialised outside the lock (one producer per spool, so order is kept), then the
        # write and its hand-over under it: `close` cannot pull the file away meanwhile.
        data = _compress(pickle.dumps(page, pickle.HIGHEST_PROTOCOL))
        with self._ready:
            if self._closed:
                raise SpoolClosed
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="ingest-scan-")  # noqa: SIM115 (closed by close)
            os.pwrite(self._file.fileno(), data, self._end)
            self._queue.append((_SPILLED, (self._end, len(data))))
            self._end += len(data)
            self._ready.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """No more pages: end the consumer's iteration, or raise `error` there."""
        with self._ready:
            self._queue.append((_DONE, error))
            self.finished = True
            self._ready.notify_all()

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                with self._ready:
                    if not self._consumed:
                        self._consumed = True
                        self._ready.notify_all()
                    while not self._queue:
                        self._ready.wait()
                    page, where = self._queue.popleft()
                    if page is _DONE:
                        if where is not None:
                            raise where
                        return
                    if page is _SPILLED:
                        offset, length = where
                        data = os.pread(self._file.fileno(), length, offset)
                    else:
                        self._in_memory -= 1
                        self._ready.notify_all()  # a producer may be waiting for room
                if page is _SPILLED:
                    page = pickle.loads(_decompress(data))
                yield page if self._decode is None else self._decode(page)
        finally:
            self.close()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._queue.clear()
            self._ready.notify_all()
            if self._file is not None:
                self._file.close()
                self._file = None


def _compress(data: bytes) -> bytes:
    """`data` compressed, prefixed with its length (which decompressing needs)."""
    import pyarrow  # only once a listing runs ahead far enough to spill

    return len(data).to_bytes(8, "little") + pyarrow.compress(data, "zstd", asbytes=True)


def _decompress(data: bytes) -> bytes:
    import pyarrow

    size = int.from_bytes(data[:8], "little")
    return pyarrow.decompress(data[8:], size, "zstd", asbytes=True)


def in_background(
    pages: Iterator[Any], name: str, decode: Callable[[Any], Any] | None = None
) -> PageSpool:
    """Start pulling `pages` in a daemon thread now; iterate the spool to get them in order,
    each passed through `decode` if given.

    An exception in the thread is re-raised in the consumer; closing the spool (or finishing
    its iteration) stops the thread at its next page.
    """
    spool = PageSpool(decode)

    def produce() -> None:
        try:
            for page in pages:
                spool.put(page)
        except SpoolClosed:
            return
        except BaseException as error:  # handed to the consuming thread
            spool.finish(error)
            return
        spool.finish()

    threading.Thread(target=produce, name=name, daemon=True).start()
    return spool
