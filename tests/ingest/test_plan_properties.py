"""Properties over arbitrary keys: every key ends up in a valid entry or with a reason, never
a crash; every URL maps back to its key; memory doesn't grow with the listing."""

from __future__ import annotations

import csv
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.listing.scan import ListedObject
from ingest.model import Entry
from ingest.plan.classify import EXTENSION_KINDS, SIDECAR_SUFFIX, classify, fast_kind
from ingest.plan.group import FolderRules
from ingest.plan.manifest import (
    CSV_HEADER,
    CsvWriter,
    entry_json,
    key_from_url,
    object_url,
    object_urls,
    write_manifests,
)
from ingest.plan.metadata import MetadataSource
from ingest.plan.pipeline import entries
from ingest.plan.report import PlanReport
from ingest.plan.validate import validate_file
from ingest.settings import GroupRule

PREFIXES = (
    "https://media-bucket.s3.eu-west-2.amazonaws.com/",
    "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/",
)
RULES = FolderRules([GroupRule(folders="g*", **{"as": "imageGroup"})])

any_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
segment = st.text(st.sampled_from("aZ09 _-.é/#%?+&"), min_size=1, max_size=8)
extension = st.sampled_from([*EXTENSION_KINDS, ".zip", "", SIDECAR_SUFFIX]).flatmap(
    lambda ext: st.sampled_from([ext, ext.upper()])
)
structured = st.builds(
    lambda parts, ext: "/".join(parts) + ext, st.lists(segment, min_size=1, max_size=4), extension
)
s3_key = st.one_of(any_text, structured).filter(lambda key: len(key.encode()) <= 1024)


def plan_keys(keys: list[str], report: PlanReport):
    listing = [ListedObject(key, 1, "etag") for key in sorted(set(keys))]
    return entries(
        listing,
        url_prefix=PREFIXES[0],
        rules=RULES,
        excluded=lambda key: False,
        content_type_of=lambda key: None,
        metadata=MetadataSource(None, None, None),
        report=report,
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(s3_key, min_size=1, max_size=25))
def test_every_key_becomes_a_valid_entry_or_a_reported_reason(keys, tmp_path_factory) -> None:
    report = PlanReport()
    planned = list(plan_keys(keys, report))
    in_entries = [key for entry in planned for key in entry.keys]
    assert len(in_entries) == len(set(in_entries))
    unsupported = [item["key"] for item in report.unsupported]
    assert sorted(in_entries + unsupported) == sorted(
        key for key in set(keys) if not key.endswith(SIDECAR_SUFFIX)
    )
    assert all(item["reason"] for item in report.unsupported)
    titles = [entry.title for entry in planned]
    assert len(titles) == len(set(titles))
    if planned:
        [manifest] = write_manifests(planned, tmp_path_factory.mktemp("m"), chunk_size=1000)
        assert validate_file(manifest)[0] == []


@given(key=s3_key)
def test_the_fast_classification_agrees_with_classify(key) -> None:
    """`fast_kind` (inlined in `pipeline.items`) answers for common keys only, never differently."""
    kind = fast_kind(key)
    assert kind is None or kind == classify(key)[0]


def test_the_fast_classification_answers_for_the_common_extensions() -> None:
    assert fast_kind("a/b.c/photo.jpg") == "images"
    assert fast_kind("a/clip.mp4") == "videos"
    for key in ("a/b.JPG", "a/b.metadata.json", "a/scan.nii.gz", "a/.jpg", "a.jpg/", "a/b"):
        assert fast_kind(key) is None, key


@given(key=s3_key, prefix=st.sampled_from(PREFIXES))
def test_every_url_round_trips_to_its_key(key, prefix) -> None:
    url = object_url(prefix, key)
    assert object_urls(prefix)(key) == url  # the closure the plan uses
    assert key_from_url(prefix, url) == key
    assert not any(character.isspace() for character in url)


def synthetic_listing(count: int) -> Iterator[ListedObject]:
    for i in range(count):
        folder = f"g{i // 1000:04d}/" if i % 2 else f"photos/{i // 1000:04d}/"
        yield ListedObject(f"{folder}{i:08d}.jpg", 1, "etag")


def peak_bytes(count: int, out: Path) -> int:
    tracemalloc.start()
    write_manifests(plan_keys_stream(count), out, chunk_size=5000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def plan_keys_stream(count: int):
    return entries(
        synthetic_listing(count),
        url_prefix=PREFIXES[0],
        rules=RULES,
        excluded=lambda key: False,
        content_type_of=lambda key: None,
        metadata=MetadataSource(None, None, None),
        report=PlanReport(),
    )


def test_memory_does_not_grow_with_the_listing(tmp_path) -> None:
    small = peak_bytes(5_000, tmp_path / "small")
    large = peak_bytes(30_000, tmp_path / "large")
    assert large < small * 1.5, (small, large)


@given(
    keys=st.lists(s3_key, min_size=1, max_size=4, unique=True),
    metadata=st.none() | st.dictionaries(any_text, any_text, max_size=2),
)
def test_fast_renderings_equal_the_reference_ones(keys, metadata) -> None:
    """`entry_json` and `object_url` are hand-rolled for speed; the standard library is the spec."""
    for key in keys:
        assert object_url(PREFIXES[0], key) == PREFIXES[0] + quote(key, safe="/")
    urls = tuple(object_url(PREFIXES[0], key) for key in keys)
    for entry in (
        Entry("images", keys[0], keys[:1], urls[:1], client_metadata=metadata),
        Entry(
            "image_groups", keys[0], tuple(keys), urls, client_metadata=metadata, create_video=True
        ),
        Entry("dicom_series", keys[-1], tuple(keys), urls),
    ):
        assert entry_json(entry) == json.dumps(
            entry.to_manifest(), ensure_ascii=False, separators=(",", ":")
        )


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(s3_key, min_size=1, max_size=6, unique=True),
    metadata=st.none() | st.dictionaries(any_text, any_text, max_size=2),
)
def test_csv_rows_read_back_as_written(keys, metadata, tmp_path_factory) -> None:
    urls = tuple(object_url(PREFIXES[0], key) for key in keys)
    entries = [
        Entry("videos", keys[0], keys[:1], urls[:1], client_metadata=metadata),
        Entry("image_groups", keys[-1], tuple(keys), urls, create_video=False),
    ]
    writer = CsvWriter(tmp_path_factory.mktemp("csv"), max_rows=len(keys))
    for entry in entries:
        writer.add(entry)
    paths = writer.close()
    assert len(paths) == 2  # the group doesn't fit beside the video: it starts a new file
    rows = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            assert next(reader) == CSV_HEADER
            rows.extend(reader)
    video = ["" for _ in CSV_HEADER]
    video[0], video[CSV_HEADER.index("Video title")] = urls[0], keys[0]
    if metadata:
        video[-1] = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    frames = []
    for url in urls:
        frame = ["" for _ in CSV_HEADER]
        frame[0], frame[CSV_HEADER.index("Image group title")], frame[-2] = url, keys[-1], "false"
        frames.append(frame)
    assert rows == [video, *frames]
