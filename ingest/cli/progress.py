"""What a command says while it works, on stderr: progress, steps and warnings.

- Progress (objects listed, entries planned, upload units, rows linked and verified) is
  drawn with `rich` only when stderr is a terminal, and never with --quiet or --json.
  `rich` is imported only then, so piped and offline commands don't pay for it.
- Steps (`--verbose` only) say what a command is doing and what it decided.
- Warnings (a setting that doesn't apply, a stale inventory) are shown unless --quiet.

Counters are called once per item; they touch the display at most every `_REFRESH`
items, so a loop over millions of keys stays cheap.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
Counter = Callable[[int], None]  # called with the running total
_REFRESH = 1000


class Feedback:
    def __init__(self, *, progress: bool, verbose: bool, quiet: bool) -> None:
        self._verbose = verbose
        self._quiet = quiet
        self._display: Any = None  # a rich Progress, started on first use
        self._tasks: dict[str, Any] = {}
        if progress:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._display = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TextColumn("{task.completed:,.0f} {task.fields[unit]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Feedback:
        quiet, as_json = getattr(args, "quiet", False), getattr(args, "json", False)
        return cls(
            progress=sys.stderr.isatty() and not quiet and not as_json,
            verbose=getattr(args, "verbose", False),
            quiet=quiet,
        )

    @property
    def shows_progress(self) -> bool:
        return self._display is not None

    def step(self, message: str) -> None:
        """A line saying what is being done or was decided (--verbose only)."""
        if self._verbose:
            self._print(message)

    def warn(self, message: str) -> None:
        if not self._quiet:
            self._print(f"warning: {message}")

    def counter(self, label: str, unit: str) -> Callable[..., None] | None:
        """A counter drawn as `label N unit (rate/s)`, or None when progress is off."""
        if self._display is None:
            return None
        display = self._display
        if not self._tasks:
            display.start()
        task = display.add_task(label, total=None, unit=unit, rate="")
        self._tasks[label] = task
        started = time.monotonic()

        def update(total: int, detail: str | None = None) -> None:
            elapsed = time.monotonic() - started
            rate = detail or (f"({total / elapsed:,.0f}/s)" if elapsed > 1 else "")
            display.update(task, completed=total, rate=rate)

        return update

    def counted(self, items: Iterable[T], label: str, unit: str) -> Iterable[T]:
        """`items` unchanged, counted on the display while they pass."""
        update = self.counter(label, unit)
        if update is None:
            return items
        return _counting(items, update)

    def upload(self) -> UploadDisplay:
        return UploadDisplay(self.counter("uploading", "units done"), self)

    def close(self) -> None:
        if self._display is not None and self._tasks:
            self._display.stop()
            self._tasks.clear()

    def _print(self, message: str) -> None:
        if self._display is not None and self._tasks:
            self._display.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr)


def _counting(items: Iterable[T], update: Counter) -> Iterator[T]:
    total = 0
    for item in items:
        yield item
        total += 1
        if total % _REFRESH == 0:
            update(total)
    update(total)


class UploadDisplay:
    """Units done / pending / failed over every job polled (`ingest.encord.upload.UploadProgress`)."""

    def __init__(self, update: Callable[..., None] | None, feedback: Feedback) -> None:
        self._update = update
        self._feedback = feedback
        self._jobs: dict[str, tuple[int, int, int]] = {}

    def update(self, job_id: str, result: Any) -> None:
        counts = (
            result.units_done_count,
            result.units_pending_count,
            result.units_error_count + result.units_cancelled_count,
        )
        if self._jobs.get(job_id) == counts:
            return
        self._jobs[job_id] = counts
        done, pending, failed = (sum(column) for column in zip(*self._jobs.values(), strict=True))
        self._feedback.step(
            f"upload job {job_id}: {result.status.value}, {counts[0]} done, "
            f"{counts[1]} pending, {counts[2]} failed"
        )
        if self._update is not None:
            self._update(done, f"{pending} pending, {failed} failed, {len(self._jobs)} job(s)")

    def close(self) -> None:
        """Nothing to undraw here: the display ends with the command (`Feedback.close`)."""
