"""A listing begun ahead (`listing_begun`, `ingest run` before it imports the encord SDK) is
the one `listed_in_child` reads, and the SDK is not imported before it begins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.listing import process
from ingest.listing.fast import FastLister
from ingest.listing.process import listed_in_child, listing_begun, started_ahead
from tests.scale.test_listing_process import _Started, bucket  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]


def test_the_listing_begun_is_the_one_read(bucket, monkeypatch) -> None:  # noqa: F811
    s3, name = bucket
    started = _Started(monkeypatch)
    here = [obj._replace(last_modified=None) for obj in FastLister(s3, name, 4).objects([""])]

    with started_ahead(), listing_begun(s3, name, [""], 4):
        [child] = started.children
        assert child.stdin is not None and child.stdin.closed  # requested: it lists now
        assert list(listed_in_child(s3, name, [""], 4)) == here

    assert len(started.children) == 1
    assert started.children[0].returncode == 0


def test_a_listing_of_something_else_ends_the_one_begun(bucket, monkeypatch) -> None:  # noqa: F811
    s3, name = bucket
    started = _Started(monkeypatch)
    big = [obj._replace(last_modified=None) for obj in FastLister(s3, name, 4).objects(["big/"])]

    with listing_begun(s3, name, [""], 4):
        assert list(listed_in_child(s3, name, ["big/"], 4)) == big

    first, second = started.children
    assert first.returncode is not None and first.returncode != 0  # ended, not read
    assert second.returncode == 0


def test_a_listing_begun_and_never_read_is_ended(bucket, monkeypatch) -> None:  # noqa: F811
    s3, name = bucket
    started = _Started(monkeypatch)

    with pytest.raises(RuntimeError), listing_begun(s3, name, [""], 4):
        raise RuntimeError("the command failed before it listed")

    [child] = started.children
    assert child.returncode is not None
    assert process._ahead.waiting is None


def test_the_run_command_imports_no_encord_module_before_it_begins_the_listing() -> None:
    # `run_command` begins the listing, then imports its steps: its own module must not
    # have imported the SDK already.
    code = "import sys, ingest.cli.run; print(sorted(m for m in sys.modules if m.startswith('encord')))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
