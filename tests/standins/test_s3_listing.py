"""standins.s3_listing: boto3 lists, pages, filters and reads through it as it would through S3."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import re
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from standins.s3_listing import (
    BUCKET,
    FILES_BUCKET,
    IMAGES_BUCKET,
    NAMESPACE,
    ImageBucket,
    SyntheticBucket,
    list_objects_v2,
    start_standin,
    url_encode,
)

KEYS = 25_000
IMAGES = 2_003  # not a multiple of the 16 prefixes: the first three hold one more
ROOT_KEYS = ["README.txt", "p08_index.csv", "zz-notes.txt"]
NS = f"{{{NAMESPACE}}}"


@pytest.fixture(scope="module")
def reference() -> list[str]:
    return SyntheticBucket(KEYS).keys()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding an S3 Inventory-like report and a file large enough to range over."""
    root = tmp_path_factory.mktemp("standin-files")
    report = root / "inventory" / "2026-11-01T00-00Z"
    report.mkdir(parents=True)
    data = root / "inventory" / "data"
    data.mkdir()
    (data / "part 1 é.csv.gz").write_bytes(gzip.compress(b'"bench-bucket","a b.jpg","12"\n'))
    (report / "manifest.json").write_text(json.dumps({"files": [{"key": "data/part 1 é.csv.gz"}]}))
    (root / "big.bin").write_bytes(os.urandom(3 * 2**20 + 17))
    return root


@pytest.fixture(scope="module")
def standin(files: Path):
    with start_standin(KEYS, directory=files, images=IMAGES) as server:
        yield server


def _client(endpoint_url: str, **config):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="eu-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture(scope="module")
def s3(standin):
    return _client(standin.endpoint_url)


def _keys(s3, **params) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, **params)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _ascending(keys: list[str]) -> bool:
    encoded = [key.encode() for key in keys]
    return all(a < b for a, b in pairwise(encoded))


def test_the_paginator_lists_every_key_once_in_order(s3, reference):
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET))
    items = [item for page in pages for item in page["Contents"]]
    keys = [item["Key"] for item in items]

    assert keys == reference
    # Independent of the arithmetic: S3's order, each key once, every key under its prefix.
    assert len(keys) == KEYS == len(set(keys))
    assert _ascending(keys)
    assert [key for key in keys if "/" not in key] == ROOT_KEYS
    per_prefix = Counter(key.split("/")[0] for key in keys if "/" in key)
    assert sorted(per_prefix) == [f"p{p:02d}" for p in range(16)]
    assert sum(per_prefix.values()) == KEYS - 3
    assert max(per_prefix.values()) - min(per_prefix.values()) <= 1
    assert any(" " in key for key in keys) and any("é" in key for key in keys)
    assert [page["KeyCount"] for page in pages] == [1000] * 25
    assert all(page["MaxKeys"] == 1000 and page["EncodingType"] == "url" for page in pages)
    assert not pages[-1]["IsTruncated"] and "NextContinuationToken" not in pages[-1]
    assert all(re.fullmatch(r'"[0-9a-f]{32}"', item["ETag"]) for item in items)
    assert len({item["ETag"] for item in items}) == KEYS
    assert {item["StorageClass"] for item in items} == {"STANDARD"}
    assert all(item["Size"] > 0 and item["LastModified"].year == 2026 for item in items)


@pytest.mark.parametrize(
    ("prefix", "start_after"),
    [
        ("p05/", None),
        ("p03/00000", None),  # partial: folders 0–9 of p03
        ("p03/0000003/caméra", None),
        ("p03/0000001/group/view 01", None),
        ("p08", None),  # a top-level prefix's keys and the root key after them
        ("nothing/", None),
        ("p05/", "p05/0000007/cam-0/shot-0042.jpg"),  # a key
        ("p05/", "p05/0000007/cam"),  # between keys
        ("", "p15/0000015/cam-1/shot-0050.pdf"),  # across the last prefix and a root key
        ("", "zzz"),
    ],
)
def test_prefix_and_start_after(s3, reference, prefix, start_after):
    params = {"Prefix": prefix} | ({"StartAfter": start_after} if start_after else {})

    keys = _keys(s3, **params)

    assert keys == [
        key
        for key in reference
        if key.startswith(prefix) and (start_after is None or key > start_after)
    ]
    assert _ascending(keys) and all(key.startswith(prefix) for key in keys)


def test_max_keys_pages(s3, reference):
    prefix = "p02/0000012/"  # one folder: 100 keys
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": 7}
        )
    )

    assert [page["KeyCount"] for page in pages] == [7] * 14 + [2]
    assert {page["MaxKeys"] for page in pages} == {7}
    assert all("NextContinuationToken" in page for page in pages[:-1])
    assert [item["Key"] for page in pages for item in page["Contents"]] == [
        key for key in reference if key.startswith(prefix)
    ]
    capped = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=5000)
    assert (capped["KeyCount"], capped["MaxKeys"], capped["IsTruncated"]) == (1000, 5000, True)
    empty = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=0)
    assert (empty["KeyCount"], empty["IsTruncated"], "Contents" in empty) == (0, False, False)


def test_top_level_delimiter_interleaves_prefixes_and_root_keys(s3):
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Delimiter="/", PaginationConfig={"PageSize": 7}
        )
    )
    # Each page in key order: S3 sends its Contents, then its CommonPrefixes.
    entries = [
        entry
        for page in pages
        for entry in sorted(
            [item["Key"] for item in page.get("Contents", [])]
            + [group["Prefix"] for group in page.get("CommonPrefixes", [])]
        )
    ]

    assert [page["KeyCount"] for page in pages] == [7, 7, 5]
    assert entries == sorted(ROOT_KEYS + [f"p{p:02d}/" for p in range(16)])
    assert entries[9:12] == ["p08/", "p08_index.csv", "p09/"]
    assert {page["Delimiter"] for page in pages} == {"/"}


def test_delimiter_below_the_top_level(s3, reference):
    folder = s3.list_objects_v2(Bucket=BUCKET, Prefix="p03/0000003/", Delimiter="/")
    assert folder["CommonPrefixes"] == [{"Prefix": "p03/0000003/caméra 3/"}]
    assert "Contents" not in folder

    folders = s3.list_objects_v2(Bucket=BUCKET, Prefix="p03/", Delimiter="/")
    expected = sorted({key.split("/")[1] for key in reference if key.startswith("p03/")})
    assert [group["Prefix"] for group in folders["CommonPrefixes"]] == [
        f"p03/{name}/" for name in expected
    ]


def test_encoding_type_url(standin, s3):
    key = "p03/0000003/caméra 3/shot-0000.pdf"
    encoded = "p03/0000003/cam%C3%A9ra+3/shot-0000.pdf"
    assert url_encode(key) == encoded and unquote_plus(encoded) == key
    assert url_encode("a b+c~d*é_.-/") == "a+b%2Bc%7Ed*%C3%A9_.-/"

    # boto3 asks for url encoding itself and decodes; asked for explicitly, it leaves it be.
    decoded = s3.list_objects_v2(Bucket=BUCKET, Prefix="p03/0000003/cam", MaxKeys=1)
    assert decoded["Contents"][0]["Key"] == key
    raw = s3.list_objects_v2(Bucket=BUCKET, Prefix="p03/0000003/", MaxKeys=1, EncodingType="url")
    assert raw["Contents"][0]["Key"] == encoded
    assert raw["Prefix"] == "p03/0000003/"

    query = "&".join(
        [
            "list-type=2",
            "encoding-type=url",
            f"prefix={quote('p03/0000003/caméra 3/')}",
            f"start-after={quote('p03/0000003/caméra 3/shot-0000.pdf')}",
            "delimiter=%2F",
            "max-keys=2",
        ]
    )
    with urllib.request.urlopen(f"{standin.endpoint_url}/{BUCKET}?{query}") as response:
        body = response.read()
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns=')
    assert b"<Prefix>p03/0000003/cam%C3%A9ra+3/</Prefix>" in body
    assert b"<StartAfter>p03/0000003/cam%C3%A9ra+3/shot-0000.pdf</StartAfter>" in body
    assert b"<Key>p03/0000003/cam%C3%A9ra+3/shot-0001.jpg</Key>" in body
    assert b"<ETag>&quot;" in body
    root = ElementTree.fromstring(body)
    assert root.tag == f"{NS}ListBucketResult"
    assert [child.tag.removeprefix(NS) for child in root] == [
        "Name",
        "Prefix",
        "StartAfter",
        "NextContinuationToken",
        "KeyCount",
        "MaxKeys",
        "Delimiter",
        "EncodingType",
        "IsTruncated",
        "Contents",
        "Contents",
    ]
    contents = root.find(f"{NS}Contents")
    assert [child.tag.removeprefix(NS) for child in contents] == [
        "Key",
        "LastModified",
        "ETag",
        "Size",
        "StorageClass",
    ]
    assert re.fullmatch(r"2026-\d\d-\d\dT\d\d:00:00\.000Z", contents.find(f"{NS}LastModified").text)

    plain = f"{standin.endpoint_url}/{BUCKET}?list-type=2&max-keys=1&prefix=p03/0000003/"
    with urllib.request.urlopen(plain) as response:
        assert f"<Key>{key}</Key>".encode() in response.read()


def test_the_listing_agrees_with_a_naive_one_page_by_page():
    """`list_objects_v2` paged through, against S3's rules applied to the whole key list."""
    bucket = SyntheticBucket(503, prefixes=4)
    keys = bucket.keys()
    for prefix in ("", "p01/", "p01/00000", "p0", "p01/0000001/g"):
        for delimiter in ("", "/", "-"):
            for start_after in (None, "p01/0000001/group/view 050.png"):
                for max_keys in (1, 7, 1000):
                    expected = _naive_listing(keys, prefix, delimiter, start_after)
                    got = _page_through(bucket, prefix, delimiter, start_after, max_keys)
                    assert got == expected, (prefix, delimiter, start_after, max_keys)


def _naive_listing(keys, prefix, delimiter, start_after) -> list[str]:
    entries: list[str] = []
    for key in keys:
        if not key.startswith(prefix) or (start_after is not None and key <= start_after):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = key if cut < 0 else key[: cut + len(delimiter)]
        if not entries or entries[-1] != entry:
            entries.append(entry)
    return entries


def _page_through(bucket, prefix, delimiter, start_after, max_keys) -> list[str]:
    params = {"prefix": prefix, "delimiter": delimiter, "max-keys": str(max_keys)}
    if start_after is not None:
        params["start-after"] = start_after
    entries: list[str] = []
    while True:
        root = ElementTree.fromstring(list_objects_v2(bucket, BUCKET, params))
        page = [node.text or "" for node in root.iter(f"{NS}Key")]
        page += [node.text or "" for node in root.findall(f"{NS}CommonPrefixes/{NS}Prefix")]
        assert int(root.findtext(f"{NS}KeyCount")) == len(page) <= max_keys
        entries += sorted(page)
        if root.findtext(f"{NS}IsTruncated") == "false":
            return entries
        params["continuation-token"] = root.findtext(f"{NS}NextContinuationToken")


def test_ten_million_keys_are_listed_from_anywhere_without_storing_them():
    bucket = SyntheticBucket(10_000_000)
    n = len(bucket)

    root = ElementTree.fromstring(
        list_objects_v2(bucket, BUCKET, {"start-after": bucket.key(n - 1001)})
    )

    assert [node.text for node in root.iter(f"{NS}Key")] == [
        bucket.key(i) for i in range(n - 1000, n)
    ]
    assert bucket.key(n - 1) == "zz-notes.txt"
    assert _ascending([bucket.key(i) for i in range(0, n, 9973)])


def test_directory_bucket_get_head_download(s3, files, tmp_path):
    big = (files / "big.bin").read_bytes()
    listed = s3.list_objects_v2(Bucket=FILES_BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == [
        "big.bin",
        "inventory/2026-11-01T00-00Z/manifest.json",
        "inventory/data/part 1 é.csv.gz",
    ]
    assert listed[0]["Size"] == len(big)
    assert listed[0]["ETag"] == f'"{hashlib.md5(big).hexdigest()}"'

    head = s3.head_object(Bucket=FILES_BUCKET, Key="big.bin")
    assert head["ContentLength"] == len(big) and head["ETag"] == listed[0]["ETag"]
    assert head["LastModified"] == listed[0]["LastModified"].replace(microsecond=0)

    report = s3.get_object(Bucket=FILES_BUCKET, Key="inventory/data/part 1 é.csv.gz")
    assert gzip.decompress(report["Body"].read()) == b'"bench-bucket","a b.jpg","12"\n'

    part = s3.get_object(Bucket=FILES_BUCKET, Key="big.bin", Range="bytes=10-19")
    assert part["Body"].read() == big[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(big)}"

    # Over the multipart threshold, download_file fetches ranges in parallel threads.
    target = tmp_path / "big.bin"
    ranged = TransferConfig(multipart_threshold=2**20, multipart_chunksize=2**20)
    s3.download_file(FILES_BUCKET, "big.bin", str(target), Config=ranged)
    assert target.read_bytes() == big

    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=FILES_BUCKET, Key="inventory/none.csv")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as missing_head:
        s3.head_object(Bucket=FILES_BUCKET, Key="../big.bin")
    assert missing_head.value.response["Error"]["Code"] == "404"


def test_image_bucket_lists_every_image_once_in_order_and_serves_each():
    bucket = ImageBucket(IMAGES)
    keys = [bucket.key(i) for i in range(IMAGES)]

    assert keys == sorted(keys)
    assert sorted(keys) == sorted(f"p{i % 16:02d}/img-{i:07d}.png" for i in range(IMAGES))
    assert all(bucket.number(key) is not None for key in keys)
    for absent in ("p01/img-0000000.png", f"p00/img-{IMAGES + 13:07d}.png", "p00/x.png"):
        assert bucket.number(absent) is None


def test_image_bucket_get_head_and_ranges(s3):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=IMAGES_BUCKET)
    listed = [item for page in pages for item in page.get("Contents", [])]
    assert len(listed) == IMAGES
    body = ImageBucket(1).body
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert {(item["Size"], item["ETag"]) for item in listed} == {(len(body), etag)}

    key = listed[777]["Key"]
    whole = s3.get_object(Bucket=IMAGES_BUCKET, Key=key)
    assert whole["Body"].read() == body and whole["ETag"] == etag
    assert whole["LastModified"] == listed[777]["LastModified"]
    # What the sandbox sends: a range past the end is cut to the object.
    head = s3.get_object(Bucket=IMAGES_BUCKET, Key=key, Range="bytes=0-262143")
    assert head["Body"].read() == body
    assert head["ContentRange"] == f"bytes 0-{len(body) - 1}/{len(body)}"
    part = s3.get_object(Bucket=IMAGES_BUCKET, Key=key, Range="bytes=8-15")
    assert part["Body"].read() == body[8:16]
    assert s3.head_object(Bucket=IMAGES_BUCKET, Key=key)["ContentLength"] == len(body)

    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=IMAGES_BUCKET, Key="p01/img-0000000.png")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_signatures_are_ignored_and_virtual_hosts_served(standin, s3, files):
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": FILES_BUCKET, "Key": "inventory/data/part 1 é.csv.gz"}
    )
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == (files / "inventory/data/part 1 é.csv.gz").read_bytes()

    listing = s3.generate_presigned_url(
        "list_objects_v2", Params={"Bucket": BUCKET, "Prefix": "p01/", "MaxKeys": 3}
    )
    with urllib.request.urlopen(listing) as response:
        assert response.read().count(b"<Key>p01/") == 3

    address = urlsplit(standin.endpoint_url)
    connection = http.client.HTTPConnection(address.hostname, address.port)
    connection.request(
        "GET", "/?list-type=2&max-keys=1", headers={"Host": f"{BUCKET}.localhost:{address.port}"}
    )
    assert b"<Key>README.txt</Key>" in connection.getresponse().read()
    connection.close()


def test_errors(s3):
    for call in (
        lambda: s3.list_objects_v2(Bucket="no-such-bucket"),
        lambda: s3.get_object(Bucket="no-such-bucket", Key="a"),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "NoSuchBucket"
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.head_bucket(Bucket=BUCKET)
    with pytest.raises(ClientError) as token:
        s3.list_objects_v2(Bucket=BUCKET, ContinuationToken="not a token")
    assert token.value.response["Error"]["Code"] == "InvalidArgument"


def test_sixteen_clients_wait_out_the_delay_in_parallel():
    per_prefix, page_size, pages, delay = 40, 4, 10, 0.05
    with start_standin(16 * per_prefix + 3, delay_ms=delay * 1000) as server:
        s3 = _client(server.endpoint_url, max_pool_connections=16)
        s3.head_bucket(Bucket=BUCKET)  # the client's lazy set-up, outside the timing

        def list_prefix(p: int) -> tuple[int, list[str]]:
            responses = list(
                s3.get_paginator("list_objects_v2").paginate(
                    Bucket=BUCKET, Prefix=f"p{p:02d}/", PaginationConfig={"PageSize": page_size}
                )
            )
            return len(responses), [item["Key"] for page in responses for item in page["Contents"]]

        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(list_prefix, range(16)))
        elapsed = time.perf_counter() - started

    assert [len(keys) for _, keys in results] == [per_prefix] * 16
    assert {count for count, _ in results} == {pages}
    # Clients side by side: ~pages × delay plus the clients' own CPU, far from 16 × pages × delay.
    assert pages * delay <= elapsed < pages * delay * 4, elapsed
