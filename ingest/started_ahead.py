"""A child process started before a command needs it, so that its start-up (an interpreter,
its imports) overlaps the command's own: the listing child (`ingest.listing.process`) and
the look-ups child of a sync (`ingest.encord.ahead`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

Child = TypeVar("Child")


class StartedAhead(Generic[Child]):
    """At most one child waiting to be taken; one not taken is ended."""

    def __init__(self, start: Callable[[], Child], end: Callable[[Child], None]) -> None:
        self._start = start
        self._end = end
        self._waiting: Child | None = None

    @contextmanager
    def started(self) -> Iterator[None]:
        """A child started now (unless one waits already), for the next `take`; ended on the
        way out if none took it."""
        self._waiting = self._waiting or self._start()
        try:
            yield
        finally:
            self.end()

    @property
    def waiting(self) -> Child | None:
        return self._waiting

    def take(self) -> Child | None:
        """The waiting child, now the caller's to end; None if there is none."""
        child, self._waiting = self._waiting, None
        return child

    def hold(self, child: Child) -> None:
        """`child`, taken, waits again for the next `take`."""
        assert self._waiting is None  # taken: no other waits
        self._waiting = child

    def end(self) -> None:
        """End the waiting child, if any."""
        child = self.take()
        if child is not None:
            self._end(child)
