"""The plan's files rendered in a child process are the files the writers produce in-process."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from ingest.errors import UserError
from ingest.model import Entry
from ingest.pipes import PIPE_BYTES
from ingest.plan.manifest import CsvWriter, ManifestWriter, object_url
from ingest.plan.rendering import BATCH, OutputProcess

PREFIX = "https://media-bucket.s3.eu-west-2.amazonaws.com/"


def sample_entries(count: int) -> list[Entry]:
    entries = []
    for i in range(count):
        key = f'f{i // 100}/é {i}, "quoted".png' if i % 7 == 0 else f"f{i // 100}/{i}.jpg"
        metadata = {"n": i, "tags": ["a", "ü"], "ok": True, "x": None} if i % 5 == 0 else None
        entries.append(Entry("images", key, (key,), (object_url(PREFIX, key),), ("e",), metadata))
        if i % 50 == 0:
            frames = tuple(f"g{i}/{n}.png" for n in range(3))
            urls = tuple(object_url(PREFIX, key) for key in frames)
            entries.append(Entry("image_groups", f"g{i}/", frames, urls, create_video=i % 100 == 0))
    return entries


def test_the_child_writes_the_same_bytes_as_the_writers_in_process(tmp_path: Path) -> None:
    entries = sample_entries(2 * BATCH + 17)  # several frames, the last one partial
    here, there = tmp_path / "here", tmp_path / "there"
    manifests, csv_files = ManifestWriter(here, 500), CsvWriter(here / "csv")
    for entry in entries:
        manifests.add(entry)
        csv_files.add(entry)
    expected = manifests.close() + csv_files.close()

    child = OutputProcess(there, 500)
    child.write(iter(entries))
    written = child.close()

    assert [path.relative_to(there) for path in written] == [
        path.relative_to(here) for path in expected
    ]
    assert len(written) > 2
    for mine, theirs in zip(expected, written, strict=True):
        assert mine.read_bytes() == theirs.read_bytes()


def test_a_child_the_system_refuses_raises_one_line_naming_the_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    directory = blocker / "out"
    child = OutputProcess(directory, 10)  # the child cannot create its directory
    with pytest.raises(UserError) as raised:
        child.write(sample_entries(3 * BATCH))
        child.close()
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"cannot write to {directory} (Not a directory: {directory})")
    assert "make it writable or free space on its disk" in message
    assert "--out" in message


def test_a_child_that_dies_otherwise_raises_with_its_last_words(tmp_path: Path) -> None:
    child = OutputProcess(tmp_path / "out", 10)
    child._stdin.write(b"\x05\x00\x00\x00junk!")  # a frame that is not marshal data
    with pytest.raises(OSError, match=r"writing the plan's files failed: ValueError: bad marshal"):
        child.close()


def test_kill_stops_the_child(tmp_path: Path) -> None:
    child = OutputProcess(tmp_path / "out", 10)
    child.write(sample_entries(10))
    child.kill()
    assert child._child.returncode is not None


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are Linux's")
def test_the_entries_pipe_holds_several_frames(tmp_path: Path) -> None:
    child = OutputProcess(tmp_path, 500)
    try:
        pipe = child._stdin.fileno()  # the writer's end: its pipe is the child's stdin
        assert fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        child.kill()
