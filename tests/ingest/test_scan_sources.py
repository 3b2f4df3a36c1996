"""The live listing sources against moto: the fast lister lists what boto3's paginator lists."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest.errors import UserError
from ingest.listing import fast
from ingest.listing.fast import FastLister, _Listed, _Range, parse_page
from ingest.listing.paginator import S3Lister
from ingest.listing.scan import scan
from ingest.listing.spool import PageSpool, in_background
from standins.local_aws import LocalAws, local_aws

# Keys S3 stores and a path-based client mangles: a folder marker, empty and dot segments,
# control characters, characters XML and URLs escape; plus keys around a folder's name
# ('a.jpg' < 'a/' < 'a0.jpg') to check that discovered folders merge into key order.
ODD_KEYS = [
    "dir/",
    "dir/inside.jpg",
    "a//b.jpg",
    "./x.jpg",
    "t/tab\there.jpg",
    "ctl\x01.jpg",
    "x y/ü é.png",
    "%41.jpg",
    "p+q r.jpg",
    "e/<&>'\".jpg",
    "日本/画像.jpg",
    "a.jpg",
    "a/x.jpg",
    "a0.jpg",
    "z/1/2/3.png",
    "z/1/2.png",
]
BIG = [f"big/{i:04d} café.png" for i in range(1100)]  # over one 1,000-key page, one prefix

_numbers = itertools.count(1)


def fill(aws: LocalAws, keys: list[str]) -> tuple[object, str]:
    s3 = aws.client("s3")
    bucket = f"scan-test-{next(_numbers)}"
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    return s3, bucket


@pytest.fixture(scope="module")
def listed_bucket(aws: LocalAws) -> tuple[object, str]:
    return fill(aws, ODD_KEYS + BIG)


@pytest.mark.parametrize(
    "prefixes",
    [[""], ["big/"], ["big/01", "a", "z/1/"], ["dir/", "dir/inside", "x y/"], ["a/", "a//"]],
    ids=["whole bucket", "one folder", "partial and nested", "covered", "empty segment"],
)
def test_the_fast_lister_and_the_paginator_yield_the_same_records(listed_bucket, prefixes):
    s3, bucket = listed_bucket
    fast = list(FastLister(s3, bucket, workers=4).objects(prefixes))
    paginated = list(scan(S3Lister(s3, bucket), prefixes, workers=4))
    assert fast == paginated
    keys = [obj.key for obj in fast]
    assert keys == sorted(set(keys))
    assert all(obj.size == 1 and len(obj.etag) == 32 and obj.last_modified for obj in fast)


def test_the_whole_bucket_is_every_key_once_in_key_order(listed_bucket):
    s3, bucket = listed_bucket
    keys = [obj.key for obj in FastLister(s3, bucket, workers=3).objects([""])]
    assert keys == sorted(ODD_KEYS + BIG)


def test_a_consumer_that_stops_early_stops_the_listing_threads(listed_bucket):
    s3, bucket = listed_bucket
    objects = FastLister(s3, bucket, workers=4).objects(["big/", "x y/", "z/"])
    assert next(objects).key == BIG[0]
    objects.close()  # type: ignore[attr-defined]  # a generator
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _scan_threads():
        time.sleep(0.05)
    assert _scan_threads() == []


def _scan_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("scan:")]


def test_an_empty_configured_prefix_is_an_error(listed_bucket):
    s3, bucket = listed_bucket
    with pytest.raises(UserError, match=rf"s3://{bucket}/nothing/ holds no objects"):
        list(FastLister(s3, bucket).objects(["nothing/"]))


def test_a_missing_bucket_is_a_one_line_error(aws: LocalAws):
    with pytest.raises(UserError, match=r"bucket of s3://no-such-bucket-here/ does not exist"):
        list(FastLister(aws.client("s3"), "no-such-bucket-here").objects([""]))


def test_access_denied_names_the_permission_and_other_calls_still_parse():
    with local_aws() as server:
        admin = server.bootstrap_admin()
        admin_s3 = server.client("s3", admin)
        admin_s3.create_bucket(Bucket="guarded")
        admin_s3.put_object(Bucket="guarded", Key="a/1.jpg", Body=b"x")
        outsider = server.create_user(
            "outsider",
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            },
        )
        server.enable_iam_auth()
        fast = list(FastLister(admin_s3, "guarded").objects([""]))
        assert [obj.key for obj in fast] == ["a/1.jpg"]
        # The hook is armed only for the lister: the same client's own calls parse as ever.
        assert admin_s3.list_objects_v2(Bucket="guarded")["Contents"][0]["Key"] == "a/1.jpg"
        with pytest.raises(UserError, match=r"access denied listing s3://guarded/.*s3:ListBucket"):
            list(FastLister(server.client("s3", outsider), "guarded").objects([""]))


def test_a_page_in_an_unexpected_shape_is_parsed_the_slow_way():
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Contents><Key>a%20b.jpg</Key><LastModified>2026-11-01T12:00:00.000Z</LastModified>"
        b"<ETag>&quot;abc&quot;</ETag><Size>3</Size></Contents>"
        b"<Contents><Key>c.jpg</Key><Size>4</Size><LastModified>2026-11-01T12:00:00.000Z"
        b"</LastModified><ETag>&quot;def&quot;</ETag><Owner><ID>x</ID></Owner></Contents>"
        b"<Contents><Key>d.jpg</Key><LastModified>2026-11-01T12:00:00.000Z</LastModified>"
        b"<Size>5</Size></Contents>"  # no ETag: the four scans no longer line up
        b"<EncodingType>url</EncodingType></ListBucketResult>"
    )
    objects = parse_page(body)
    assert [(obj.key, obj.size, obj.etag) for obj in objects] == [
        ("a b.jpg", 3, "abc"),
        ("c.jpg", 4, "def"),
        ("d.jpg", 5, ""),
    ]
    when = objects[0].last_modified
    assert when is not None and when.isoformat() == "2026-11-01T12:00:00+00:00"


def test_the_spool_keeps_order_spills_to_disk_and_frees_it():
    spool = PageSpool(in_memory=2)
    pages = [[i, "x" * 1000] for i in range(50)]
    for page in pages:
        spool.put(page)
    spool.finish()
    assert spool._file is not None  # pages past the first two went to disk
    assert list(spool) == pages
    assert spool._file is None


def test_a_producer_error_reaches_the_consumer_after_its_pages():
    def pages():
        yield "first"
        raise UserError("access denied listing s3://bucket/b/")

    spool = in_background(pages(), "scan:test")
    received = []
    with pytest.raises(UserError, match="access denied"):
        for page in spool:
            received.append(page)
    assert received == ["first"]


def test_closing_the_spool_stops_its_producer():
    spool = in_background(itertools.count(), "scan:endless")
    [producer] = [thread for thread in threading.enumerate() if thread.name == "scan:endless"]
    reading = iter(spool)  # held: only `close` may end the producer, not the reader's cleanup
    assert next(reading) == 0
    spool.close()
    producer.join(timeout=5)
    assert not producer.is_alive()


def test_a_bucket_under_one_folder_fans_out_below_it(aws: LocalAws):
    s3, bucket = fill(aws, ["data/2026/a/1.jpg", "data/2026/b/1.jpg", "data/2026/c.jpg"])
    units = list(FastLister(s3, bucket)._units([""]))
    assert units[0] == "data/2026/a/" and units[1] == "data/2026/b/"
    assert isinstance(units[2], _Listed)
    assert [obj.key for obj in units[2].objects] == ["data/2026/c.jpg"]


def test_the_spool_being_read_makes_its_producer_wait_instead_of_spilling():
    spool = PageSpool(in_memory=2)
    pages = iter(spool)
    spool.put("first")
    assert next(pages) == "first"  # from now on the reader is this spool's consumer

    def produce():
        for number in range(20):
            spool.put(number)
        spool.finish()

    producer = threading.Thread(target=produce)
    producer.start()
    received = []
    for page in pages:
        received.append(page)
        time.sleep(0.005)  # a slow reader
    producer.join()
    assert received == list(range(20))
    assert spool._end == 0  # nothing was written to disk


def test_keys_are_decoded_only_when_the_page_says_they_are_encoded():
    def page(encoding: bytes) -> bytes:
        return (
            b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<Contents><Key>a+b%20c.jpg</Key><LastModified>2026-11-01T12:00:00.000Z"
            b"</LastModified><ETag>&quot;abc&quot;</ETag><Size>3</Size></Contents>"
            + encoding
            + b"</ListBucketResult>"
        )

    assert parse_page(page(b"<EncodingType>url</EncodingType>"))[0].key == "a b c.jpg"
    assert parse_page(page(b""))[0].key == "a+b%20c.jpg"  # a store that ignored encoding-type


# A first prefix that spans many ranges at 4 keys a page: folders of different sizes, a
# folder marker (a key equal to a split point), a folder holding only its marker, direct
# objects between folders, unicode and escaped names, more folders than a delimiter page
# names (the rest probed again), then a second prefix.
SPLIT_KEYS = [
    *(f"first/{folder:02d}/{name}" for folder in range(12) for name in ("a.png", "b.png")),
    *(f"first/{folder:02d}/deep/{i}.png" for folder in (3, 7) for i in range(9)),
    "first/05/",
    "first/08x/",
    "first/04.jpg",
    "first/10 x.jpg",
    *(f"first/café {i}/é {j}.png" for i in range(3) for j in range(5)),
    "first/日本/画像.jpg",
    "first/z&<>/%41+.jpg",
    *(f"second/{i:02d}/x.png" for i in range(10)),
]


@pytest.fixture(scope="module")
def split_bucket(aws: LocalAws) -> tuple[object, str]:
    return fill(aws, SPLIT_KEYS)


@pytest.mark.parametrize("prefixes", [[""], ["first/"], ["first/0", "second/"]])
@pytest.mark.parametrize("pages_per_range", [1, 2])
def test_ranges_listed_side_by_side_are_the_single_streams_records(
    split_bucket, prefixes, pages_per_range, monkeypatch
):
    s3, bucket = split_bucket
    monkeypatch.setattr(fast, "PAGES_PER_RANGE", pages_per_range)
    started_after = []
    s3.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **_: started_after.append(params.get("StartAfter")),
        unique_id="test-split-requests",
    )
    try:
        split = list(FastLister(s3, bucket, workers=4, page_size=4).objects(prefixes))
    finally:
        s3.meta.events.unregister(
            "before-parameter-build.s3.ListObjectsV2", unique_id="test-split-requests"
        )
    assert split == list(scan(S3Lister(s3, bucket), prefixes, workers=1))
    # The first prefix was listed in several ranges, each from its own point.
    points = {after for after in started_after if after and after.startswith("first/")}
    assert len(points) >= 2


def test_a_prefix_one_page_holds_is_listed_by_one_request(split_bucket):
    s3, bucket = split_bucket
    lister = FastLister(s3, bucket, workers=4, page_size=100)
    ranges, rest = lister._split("second/")
    assert rest is None
    [only] = ranges
    assert (only.after, only.upto, only.token) == (None, None, None)
    assert only.first is not None and only.first.count(b"<Key>") == 10


def test_a_range_ends_at_its_point_included_and_may_be_empty(split_bucket):
    s3, bucket = split_bucket
    lister = FastLister(s3, bucket, workers=4, page_size=2)

    def keys(after: str, upto: str) -> list[str]:
        return [obj.key for page in lister._start(_Range("first/", after, upto)) for obj in page]

    assert keys("first/08/b.png", "first/08x/") == ["first/08x/"]  # the marker at the point
    assert keys("first/08x/", "first/09/") == []  # only a marker folder between the points
    assert keys("first/04.jpg", "first/05/") == ["first/04/a.png", "first/04/b.png", "first/05/"]


def test_a_range_keeps_only_its_own_keys_even_from_a_store_ignoring_start_after():
    def page(*keys: str) -> list[tuple[str]]:
        return [(key,) for key in keys]

    def within(after: str | None, upto: str | None, *keys: str) -> list[str]:
        return [key for (key,) in fast._within(lambda body: page(*keys), after, upto, b"")]

    assert within("b/", "c/", "a/1", "b/", "b/1", "c/", "c/1") == ["b/1", "c/"]
    assert within(None, "b/", "a/1", "b/", "b/1") == ["a/1", "b/"]
    assert within("b/", None, "b/", "b/1") == ["b/1"]
    assert within("é/", "ü/", "a", "é/x", "ü/", "ü/x") == ["é/x", "ü/"]


def test_ranges_of_even_folders_end_inside_their_last_page(aws: LocalAws, monkeypatch):
    # 60 folders of 10 keys at 100 keys a page: the first page spans 10 folders, so a range
    # is 19 folders (2 pages' worth, less one): 290, 190 and 120 keys. Each inner range's
    # last page holds its last 90 keys and the 10 that prove its end; with 20-folder ranges
    # (300 and 200 keys) each would end at a page's edge and need one more request for them.
    s3, bucket = fill(aws, [f"u/{folder:02d}/{i}.png" for folder in range(60) for i in range(10)])
    monkeypatch.setattr(fast, "PAGES_PER_RANGE", 2)
    requests = []
    s3.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **_: requests.append(params),
        unique_id="test-even-folders",
    )
    try:
        keys = [obj.key for obj in FastLister(s3, bucket, workers=4, page_size=100).objects(["u/"])]
    finally:
        s3.meta.events.unregister(
            "before-parameter-build.s3.ListObjectsV2", unique_id="test-even-folders"
        )
    assert keys == sorted(keys) and len(set(keys)) == 600
    # The first page, the folders, then 2 more pages per range: 7 pages for 600 keys.
    assert len(requests) == 8
    assert {params.get("StartAfter") for params in requests} == {None, "u/29/", "u/48/"}
