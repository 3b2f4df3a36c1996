"""Properties over arbitrary keys: every key ends up in a valid entry or with a reason, never
a crash; every URL maps back to its key; memory doesn't grow with the listing."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.classify import EXTENSION_KINDS, SIDECAR_SUFFIX
from ingest.group import FolderRules
from ingest.manifest import key_from_url, object_url, write_manifests
from ingest.metadata import MetadataSource
from ingest.plan import entries
from ingest.report import PlanReport
from ingest.scan import ListedObject
from ingest.settings import GroupRule
from ingest.validate import validate_file

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


@given(key=s3_key, prefix=st.sampled_from(PREFIXES))
def test_every_url_round_trips_to_its_key(key, prefix) -> None:
    url = object_url(prefix, key)
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
