"""The S3 Inventory listing source against reports written as AWS documents them, in moto."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inventory_support import CREATED, EMPTY_ETAG, MODIFIED, Row, location, write_report

import ingest.listing.inventory as scan_inventory
from bench.inventory import write_synthetic_inventory
from bench.listing import synthetic_keys
from ingest.errors import UserError
from ingest.listing.inventory import inventory_objects, parse_location
from ingest.listing.scan import ListedObject

SOURCE = "photos-bucket"
PREFIX = f"inventory/{SOURCE}/encord-ingest/"
FORMATS = ["CSV", "ORC", "Parquet"]


@pytest.fixture
def s3(aws_env):
    return aws_env.client("s3")


@pytest.fixture
def destination(make_bucket) -> str:
    return make_bucket({})


def listed(s3, bucket: str, warnings: list[str] | None = None, **overrides) -> list[ListedObject]:
    arguments = {
        "source_bucket": SOURCE,
        "prefixes": [""],
        "max_age": timedelta(days=2),
        "warn": (warnings if warnings is not None else []).append,
        "now": CREATED + timedelta(hours=6),
        **overrides,
    }
    return list(inventory_objects(s3, location(bucket, PREFIX), **arguments))


def keys_of(objects: list[ListedObject]) -> list[str]:
    return [listed_object.key for listed_object in objects]


def test_csv_keys_are_url_decoded(s3, destination):
    keys = [
        "photos/a b.png",
        "photos/c++ notes.png",
        "photos/100%.png",
        "photos/%41.png",  # a literal "%41", not "A"
        "photos/été/ü ñ 写真.jpg",
        "photos/x=y&z?.png",
        "photos/plain.png",
    ]
    write_report(s3, destination, PREFIX, [[Row(key) for key in keys]], source_bucket=SOURCE)

    objects = listed(s3, destination)

    assert keys_of(objects) == sorted(keys)
    assert objects[0] == ListedObject("photos/%41.png", 1024, EMPTY_ETAG, MODIFIED)
    assert objects[0].last_modified.utcoffset() == timedelta(0)


def test_every_format_yields_the_same_records(s3, destination):
    rows = [
        Row("b/two.jpg", size=0, etag="0" * 32, last_modified=datetime(2020, 1, 1, tzinfo=UTC)),
        Row("a/one space.png", size=5_000_000_000, etag="f" * 32 + "-12"),
        Row("c/três.mp4", size=7, last_modified=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ]
    expected = sorted(ListedObject(row.key, row.size, row.etag, row.last_modified) for row in rows)
    for fmt in FORMATS:
        prefix = f"{fmt.lower()}/{SOURCE}/config/"
        write_report(s3, destination, prefix, [rows], source_bucket=SOURCE, fmt=fmt)
        objects = inventory_objects(
            s3,
            location(destination, prefix),
            source_bucket=SOURCE,
            prefixes=[""],
            max_age=timedelta(days=2),
            warn=pytest.fail,
            now=CREATED,
        )
        assert list(objects) == expected, fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_versioned_inventory_keeps_only_current_objects(s3, destination, fmt):
    rows = [
        Row("b.png", size=2, is_latest=False, version_id="old"),
        Row("a.png", size=1),
        Row("b.png", size=3, version_id="new"),
        Row("c.png", is_latest=True, is_delete_marker=True, version_id="marker"),
        Row("c.png", size=4, is_latest=False, version_id="before-delete"),
        Row("d.png", is_latest=True, is_delete_marker=True),
    ]
    write_report(s3, destination, PREFIX, [rows], source_bucket=SOURCE, fmt=fmt, versioned=True)

    objects = listed(s3, destination)

    assert [(o.key, o.size) for o in objects] == [("a.png", 1), ("b.png", 3)]


def test_the_newest_complete_report_is_used(s3, destination):
    older = CREATED - timedelta(days=1)
    write_report(s3, destination, PREFIX, [[Row("old.png")]], source_bucket=SOURCE, created=older)
    write_report(s3, destination, PREFIX, [[Row("new.png")]], source_bucket=SOURCE)
    warnings: list[str] = []

    assert keys_of(listed(s3, destination, warnings)) == ["new.png"]
    assert warnings == []


@pytest.mark.parametrize(
    ("checksum", "problem"),
    [("missing", "no manifest.checksum yet"), ("wrong", "does not match manifest.checksum")],
)
def test_a_newer_report_that_is_not_complete_is_skipped_with_a_warning(
    s3, destination, checksum, problem
):
    older = CREATED - timedelta(days=1)
    write_report(s3, destination, PREFIX, [[Row("old.png")]], source_bucket=SOURCE, created=older)
    newer = write_report(
        s3, destination, PREFIX, [[Row("new.png")]], source_bucket=SOURCE, checksum=checksum
    )
    warnings: list[str] = []

    assert keys_of(listed(s3, destination, warnings)) == ["old.png"]
    assert len(warnings) == 1
    assert f"skipping inventory report {newer.name}" in warnings[0]
    assert problem in warnings[0]


def test_only_incomplete_reports_is_an_error(s3, destination):
    write_report(s3, destination, PREFIX, [[Row("a.png")]], source_bucket=SOURCE, checksum="wrong")
    warnings: list[str] = []

    with pytest.raises(UserError, match=r"no complete S3 Inventory report under .*1 incomplete"):
        listed(s3, destination, warnings)
    assert len(warnings) == 1


def test_no_report_at_all_says_to_wait_or_check_the_location(s3, destination):
    s3.put_object(Bucket=destination, Key=f"{PREFIX}data/stray.csv.gz", Body=b"")

    with pytest.raises(UserError) as raised:
        listed(s3, destination)

    message = str(raised.value)
    assert f"no complete S3 Inventory report under s3://{destination}/{PREFIX}" in message
    assert "48 hours" in message
    assert "inventoryLocation" in message
    assert "\n" not in message


def test_a_stale_report_is_used_with_a_warning_naming_its_date(s3, destination):
    written = write_report(s3, destination, PREFIX, [[Row("a.png")]], source_bucket=SOURCE)
    warnings: list[str] = []

    objects = listed(s3, destination, warnings, now=CREATED + timedelta(days=3))

    assert keys_of(objects) == ["a.png"]
    assert len(warnings) == 1
    assert written.name in warnings[0]
    assert "3.0 days old" in warnings[0]


def test_a_report_of_another_bucket_is_an_error(s3, destination):
    write_report(s3, destination, PREFIX, [[Row("a.png")]], source_bucket="someone-else")

    with pytest.raises(UserError, match=r"lists bucket 'someone-else', not 'photos-bucket'"):
        inventory_objects(
            s3,
            location(destination, PREFIX),
            source_bucket=SOURCE,
            prefixes=[""],
            max_age=timedelta(days=2),
            warn=pytest.fail,
            now=CREATED,
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_required_fields_say_what_to_add(s3, destination, fmt):
    write_report(
        s3,
        destination,
        PREFIX,
        [[Row("a.png")]],
        source_bucket=SOURCE,
        fmt=fmt,
        optional_fields=("Size", "StorageClass"),
    )

    with pytest.raises(UserError) as raised:
        listed(s3, destination)

    message = str(raised.value)
    assert "lacks the field(s) ETag, LastModifiedDate" in message
    assert "add the optional fields Size, LastModifiedDate and ETag" in message


def test_an_invalid_manifest_is_an_error_naming_it(s3, destination):
    folder = f"{PREFIX}2024-05-01T00-00Z/"
    body = json.dumps({"sourceBucket": SOURCE, "version": "2016-11-30"}).encode()
    s3.put_object(Bucket=destination, Key=f"{folder}manifest.json", Body=body)
    digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
    s3.put_object(Bucket=destination, Key=f"{folder}manifest.checksum", Body=digest + "\n")

    with pytest.raises(
        UserError, match=rf"s3://{destination}/{folder}manifest.json is not a valid"
    ):
        listed(s3, destination)


@pytest.mark.parametrize(
    ("fmt", "damage"),
    [
        ("CSV", lambda body: body[: len(body) // 2]),  # truncated gzip
        ("CSV", lambda body: b"not gzip at all"),
        ("Parquet", lambda body: body[:-40]),  # truncated: no footer
        ("ORC", lambda body: b"ORC" + bytes(100)),
    ],
)
def test_an_unreadable_data_file_is_an_error_naming_it(s3, destination, fmt, damage):
    rows = [Row(f"k{i:04d}.png") for i in range(500)]
    written = write_report(
        s3, destination, PREFIX, [rows], source_bucket=SOURCE, fmt=fmt, damage=damage
    )

    with pytest.raises(UserError) as raised:
        listed(s3, destination)

    message = str(raised.value)
    assert f"unreadable inventory file s3://{destination}/{written.data_keys[0]} ({fmt}" in message
    assert "\n" not in message


def test_a_data_file_that_does_not_match_its_checksum_is_an_error(s3, destination):
    written = write_report(s3, destination, PREFIX, [[Row("a.png")]], source_bucket=SOURCE)
    s3.put_object(Bucket=destination, Key=written.data_keys[0], Body=b"changed")

    with pytest.raises(UserError) as raised:
        listed(s3, destination)

    assert str(raised.value) == (
        f"corrupt inventory file s3://{destination}/{written.data_keys[0]}: checksum mismatch; "
        "wait for the next report or delete that report folder"
    )


@pytest.mark.parametrize("run_rows", [250_000, 7])
def test_unsorted_files_and_rows_come_out_in_key_order_once(s3, destination, monkeypatch, run_rows):
    monkeypatch.setattr(scan_inventory, "_RUN_ROWS", run_rows)
    shuffle = random.Random(7).shuffle
    keys = [f"{folder}/{name}" for folder in ("zeta", "alpha", "Été", "mid") for name in "qazwsx"]
    keys += ["alpha/a", "alpha/a/", "alpha/a!", "alpha/a-b", "alpha/ab", "日本/x", "~tilde"]
    files = [keys[i::3] for i in range(3)]  # each file spans the whole key range
    files.append(["mid/q", "alpha/a", "mid/q"])  # duplicates, also of keys other files hold
    for rows in files:
        shuffle(rows)
    write_report(
        s3,
        destination,
        PREFIX,
        [[Row(key) for key in rows] for rows in files],
        source_bucket=SOURCE,
    )

    assert keys_of(listed(s3, destination)) == sorted(set(keys))


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.text(alphabet="ab/!é写", max_size=4), max_size=12),
        max_size=8,
    ),
    run_rows=st.integers(1, 12),
)
def test_runs_yield_every_key_once_in_key_order(batches, run_rows):
    listed_at = datetime(2024, 1, 1, tzinfo=UTC)
    with (
        tempfile.TemporaryDirectory() as scratch,
        patch.object(scan_inventory, "_RUN_ROWS", run_rows),
    ):
        runs = scan_inventory._Runs(Path(scratch))
        for keys in batches:
            columns = {
                "key": keys,
                "size": [len(key) for key in keys],
                "etag": ["e"] * len(keys),
                "ms": [int(listed_at.timestamp() * 1000)] * len(keys),
            }
            runs.add(pa.RecordBatch.from_pydict(columns, schema=scan_inventory._RUN_SCHEMA))
        objects = list(scan_inventory._in_key_order(runs.finish()))

    every = {key for keys in batches for key in keys}
    assert objects == [ListedObject(key, len(key), "e", listed_at) for key in sorted(every)]


def test_files_in_reverse_key_order_are_concatenated_in_key_order(s3, destination):
    files = [[Row(f"{folder}/{i:03d}.png") for i in range(50)] for folder in ("c", "b", "a")]
    write_report(s3, destination, PREFIX, files, source_bucket=SOURCE, fmt="Parquet")

    keys = keys_of(listed(s3, destination))

    assert keys == sorted(keys)
    assert len(keys) == 150


def test_only_keys_under_the_prefixes_are_listed(s3, destination):
    keys = ["docs/a.pdf", "photos/2024/a.png", "photos/b.png", "photosx/c.png", "videos/v.mp4"]
    write_report(s3, destination, PREFIX, [[Row(key) for key in keys]], source_bucket=SOURCE)

    objects = listed(s3, destination, prefixes=["videos/", "photos/2024/", "photos/"])

    assert keys_of(objects) == ["photos/2024/a.png", "photos/b.png", "videos/v.mp4"]


def test_a_prefix_with_nothing_in_the_report_is_an_error(s3, destination):
    write_report(s3, destination, PREFIX, [[Row("photos/a.png")]], source_bucket=SOURCE)

    with pytest.raises(UserError, match=rf"lists no objects under s3://{SOURCE}/videos/"):
        listed(s3, destination, prefixes=["photos/", "videos/"])


def test_temporary_files_are_removed_when_the_iterator_is_closed(
    s3, destination, tmp_path, monkeypatch
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    rows = [Row(f"k{i:03d}") for i in range(100)]
    write_report(s3, destination, PREFIX, [rows, rows[:10]], source_bucket=SOURCE)
    arguments = {
        "source_bucket": SOURCE,
        "prefixes": [""],
        "max_age": timedelta(days=2),
        "warn": pytest.fail,
        "now": CREATED,
    }

    objects = inventory_objects(s3, location(destination, PREFIX), **arguments)
    assert next(objects).key == "k000"
    assert list(scratch.iterdir())  # the spilled runs
    objects.close()
    assert list(scratch.iterdir()) == []

    assert len(list(inventory_objects(s3, location(destination, PREFIX), **arguments))) == 100
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    "given",
    ["photos-bucket", "s3://dest", "s3://dest/", "s3://dest/only-one/", "https://dest/a/b/"],
)
def test_a_location_that_is_not_an_inventory_folder_is_an_error(given):
    with pytest.raises(UserError, match=r"is not a folder s3://DESTINATION-BUCKET/"):
        parse_location(given)


@pytest.mark.parametrize(
    "given",
    [
        "s3://dest/inv/src/cfg/2024-05-01T00-00Z/",
        "s3://dest/inv/src/cfg/2024-05-01T00-00Z/manifest.json",
    ],
)
def test_a_location_naming_one_report_points_at_its_folder(given):
    with pytest.raises(UserError, match=r"give the folder above it, s3://dest/inv/src/cfg/ "):
        parse_location(given)


def test_a_location_is_a_bucket_and_a_folder():
    assert parse_location("s3://dest/inv/src/cfg") == ("dest", "inv/src/cfg/")
    assert parse_location("s3://dest/src/cfg/") == ("dest", "src/cfg/")


def test_the_benchmark_inventory_reads_back_as_its_keys(s3, destination, tmp_path: Path):
    count = 100_000
    folder = write_synthetic_inventory(
        tmp_path, synthetic_keys(count), source_bucket=SOURCE, rows_per_file=40_000, now=CREATED
    )
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            key = path.relative_to(tmp_path).as_posix()
            s3.put_object(Bucket=destination, Key=key, Body=path.read_bytes())

    objects = inventory_objects(
        s3,
        location(destination, folder),
        source_bucket=SOURCE,
        prefixes=[""],
        max_age=timedelta(days=2),
        warn=pytest.fail,
        now=CREATED,
    )

    expected = synthetic_keys(count)
    assert all(o.key == key for o, key in zip(objects, expected, strict=True))
