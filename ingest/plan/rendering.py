"""The plan's output files written by a second process: planning and rendering in parallel.

Rendering an entry (its manifest JSON and CSV rows) costs about as much CPU as planning it.
`OutputProcess` runs the very same `ManifestWriter` and `CsvWriter` in a child interpreter
(`python -m ingest.plan.rendering`), so the planner only hands entries over: their fields
in batches of `BATCH`, `marshal`led through a pipe (cheap: see `bench/README.md`). The
pipe's capacity is the backpressure: a slow writer pauses the planner, so memory stays flat.

Protocol on the child's stdin: frames of a 4-byte little-endian length then `marshal` bytes
of a list of `EntryFields` tuples; a zero length ends the stream. The child answers on stdout
with the JSON list of the files it wrote, in order (manifests, then CSV files), or exits
non-zero with the error on stderr: `EXIT_USER_ERROR` and one line for an `OSError` (the
directory unwritable, the disk full), which the planner raises as a `UserError`.
"""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from ingest.errors import EXIT_USER_ERROR
from ingest.files import cannot_write, os_reason
from ingest.model import Entry
from ingest.pipes import whole_writes, widened
from ingest.plan.manifest import CsvWriter, ManifestWriter


class EntryFields(NamedTuple):
    """An `Entry` as the child receives it: the attributes the writers read (not `keys` nor
    `etags`); a tuple costs a fraction of an `Entry` to build (the planner validated it)."""

    kind: str
    title: str
    urls: tuple[str, ...]
    client_metadata: dict[str, Any] | None
    create_video: bool


BATCH = 1000  # entries per frame: large enough that framing costs nothing


class OutputProcess:
    """`ManifestWriter(directory, chunk_size)` and `CsvWriter(directory / "csv")` in a child
    process. `write(entries)` streams; `close()` returns the files written, like the
    writers' own `close()`; `kill()` stops the child when the plan fails."""

    def __init__(self, directory: Path, chunk_size: int) -> None:
        self._directory = directory
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close() / kill())
        # `-m` finds the package as the planner did: from the working directory (the repo
        # root) or the environment it is installed in; the child inherits both.
        self._child = subprocess.Popen(
            [sys.executable, "-m", "ingest.plan.rendering", str(directory), str(chunk_size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        stdin, stdout = self._child.stdin, self._child.stdout
        assert stdin is not None and stdout is not None  # both are pipes, as asked
        self._stdin, self._stdout = widened(stdin), stdout

    def write(self, entries: Iterable[Entry]) -> None:
        """Hand `entries` over, in order (their rendering happens in the child): the fields
        the writers read, `BATCH` entries per frame."""
        entries = iter(entries)
        while batch := [
            (entry.kind, entry.title, entry.urls, entry.client_metadata, entry.create_video)
            for entry in islice(entries, BATCH)
        ]:
            self._send(marshal.dumps(batch))

    def close(self) -> list[Path]:
        """End the stream and wait for the child; the files it wrote, in order."""
        self._send(b"")
        try:
            self._stdin.close()  # flushes the last frame
        except BrokenPipeError:
            self._child.wait()
            self._fail()
        answer = self._stdout.read()
        self._stdout.close()
        self._child.wait()
        if self._child.returncode != 0:
            self._fail()
        self._stderr.close()
        return [Path(path) for path in json.loads(answer)]

    def kill(self) -> None:
        """Stop the child (the plan failed); its partial files are the caller's to delete."""
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        for stream in (self._stdin, self._stdout, self._stderr):
            with suppress(OSError):  # stdin's unsent frames: nobody reads them any more
                stream.close()

    def _send(self, frame: bytes) -> None:
        try:
            self._stdin.write(len(frame).to_bytes(4, "little") + frame)
        except BrokenPipeError:  # the child died: its error says why
            self._child.wait()
            self._fail()

    def _fail(self) -> NoReturn:
        self._stderr.seek(0)
        error = self._stderr.read().decode(errors="replace").strip()
        self.kill()
        last = error.splitlines()[-1] if error else f"exit code {self._child.returncode}"
        if self._child.returncode == EXIT_USER_ERROR:  # the child's OSError, as one line
            raise cannot_write(self._directory, last)
        raise OSError(f"writing the plan's files failed: {last}")


def serve(directory: Path, chunk_size: int) -> None:
    """The child: entries from stdin into the writers; the files written to stdout."""
    manifests = ManifestWriter(directory, chunk_size)
    csv_files = CsvWriter(directory / "csv")
    add_to_manifests, add_to_csv_files = manifests.add, csv_files.add
    read = sys.stdin.buffer.read
    new = tuple.__new__
    while size := int.from_bytes(read(4), "little"):
        for fields in marshal.loads(read(size)):
            entry = new(EntryFields, fields)
            add_to_manifests(entry)
            add_to_csv_files(entry)
    paths = manifests.close() + csv_files.close()
    with whole_writes() as out:
        out.write(json.dumps([str(path) for path in paths]).encode())


def main(argv: list[str]) -> int:
    try:
        serve(Path(argv[0]), int(argv[1]))
    except OSError as error:  # the system refused: for the user to fix, not a bug
        sys.stderr.write(os_reason(error).replace("\n", " ") + "\n")
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    from ingest.exit import exit_now

    exit_now(main(sys.argv[1:]))
