"""Pipes to the child processes that carry records (the listing's, the rendering's) with
room for several frames in flight.

A frame is 100–300 KB and Linux's default pipe holds 64 KB: the writer would wait for the
reader every 64 KB, and on two cores shared by three processes every such wait is a switch.
A 1 MiB pipe lets each side run a few frames ahead (`bench/README.md` has the measurements).
A child writes its side through `whole_writes`: what it writes arrives whole.
"""

from __future__ import annotations

import fcntl
import sys
from contextlib import suppress
from typing import IO, BinaryIO

# Linux's cap for unprivileged processes (/proc/sys/fs/pipe-max-size, default 1 MiB).
PIPE_BYTES = 1 << 20


def widened(stream: IO[bytes]) -> IO[bytes]:
    """`stream`'s pipe made to hold `PIPE_BYTES`, where the system allows it (Linux, within
    its cap); else it keeps its size, which is only slower. Returns `stream`."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is not None:
        # Refused under a lower cap (pipe-max-size) or a user's exhausted pipe quota.
        with suppress(OSError):
            fcntl.fcntl(stream.fileno(), set_size, PIPE_BYTES)
    return stream


def whole_writes() -> BinaryIO:
    """This process's stdout as a buffered binary stream, whose `write` writes all it is
    given (flushed by closing it; stdout stays open). Under PYTHONUNBUFFERED (Docker
    images, CI) `sys.stdout.buffer` is the raw file instead, whose `write` returns having
    written part when a signal stops the process while it waits on a full pipe (a debugger,
    a profiler, job control): the rest of the frame would be lost."""
    return open(sys.stdout.fileno(), "wb", closefd=False)
