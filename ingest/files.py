"""Files written atomically: readers see the previous file or all of the new one, never half.

`AtomicFile` writes under a temporary name beside the target, fsyncs, and renames over it on
success; on failure the temporary file is removed and the previous file stays. Every file the
ingest writes for a user (manifests, CSV files, reports, lists of failures) goes through it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ingest.errors import UserError, first_line


class AtomicFile:
    """A file written under a temporary name beside `path`, renamed over it on `commit()`:
    readers never see half a file, and a failed run leaves the previous file in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed by commit or discard)
            "w", encoding="utf-8", newline="", dir=path.parent, delete=False, suffix=".tmp"
        )

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.file.name, self.path)

    def discard(self) -> None:
        self.file.close()
        os.unlink(self.file.name)

    def __enter__(self) -> IO[str]:
        return self.file

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically."""
    with AtomicFile(path) as out:
        out.write(text)


def write_jsonl(
    path: Path, records: Iterable[dict[str, Any]], sample_size: int = 10
) -> list[dict[str, Any]]:
    """Write `records` as JSON lines, atomically; return the first `sample_size` of them, for
    the summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sample: list[dict[str, Any]] = []
    with AtomicFile(path) as file:
        for record in records:
            if len(sample) < sample_size:
                sample.append(record)
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return sample


def os_reason(error: OSError) -> str:
    """What the system said, with the file it concerns: 'No space left on device: /out/x'."""
    reason = error.strerror or first_line(error)
    return f"{reason}: {error.filename}" if error.filename else reason


def cannot_write(directory: Path, reason: str) -> UserError:
    """The one-line error for output the system refused (unwritable, disk full)."""
    return UserError(
        f"cannot write to {directory} ({reason}): make it writable or free space on its disk, "
        "or choose another output directory (`outputDir` in the settings, or --out)"
    )
