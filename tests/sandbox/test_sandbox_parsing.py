"""The pieces that need no server: type sniffing, S3 URL forms, metadata checks, the checker."""

from __future__ import annotations

import struct
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sdk_responses import check_exchange

from demo import samples
from sandbox.app import Exchange
from sandbox.client_metadata import schema_violations
from sandbox.media import MediaKind, sniff
from sandbox.s3_access import UnitFailure, parse_object_url


@pytest.mark.parametrize(
    ("body", "kind", "mime"),
    [
        (samples.png(), MediaKind.IMAGE, "image/png"),
        (samples.jpeg(), MediaKind.IMAGE, "image/jpeg"),
        (samples.mp4(), MediaKind.VIDEO, "video/mp4"),
        (samples.wav(), MediaKind.AUDIO, "audio/x-wav"),
        (samples.pdf(), MediaKind.PDF, "application/pdf"),
        (samples.dicom(), MediaKind.DICOM, "application/dicom"),
        (samples.nifti(), MediaKind.NIFTI, "application/x-nifti"),
        (samples.text(), MediaKind.TEXT, "text/plain"),
        (b'{"a": 1}', MediaKind.TEXT, "application/json"),
    ],
    ids=["png", "jpeg", "mp4", "wav", "pdf", "dicom", "nifti", "text", "json"],
)
def test_every_sample_type_is_recognised(body, kind, mime):
    info = sniff(body)
    assert info is not None and (info.kind, info.mime_type) == (kind, mime)


@pytest.mark.parametrize(
    "body",
    [b"PK\x03\x04" + b"\x00" * 26, b"GIF89a" + b"\x00" * 10, b"", b"\x00\x01\x02"],
    ids=["zip", "gif", "empty", "binary"],
)
def test_unsupported_bytes_are_not_recognised(body):
    assert sniff(body) is None


@given(width=st.integers(1, 5000), height=st.integers(1, 5000))
def test_png_and_jpeg_dimensions_are_read(width, height):
    assert (sniff(samples.png(width, 1)).width, sniff(samples.png(1, height)).height) == (
        width,
        height,
    )
    jpeg = sniff(samples.jpeg(width, height))
    assert (jpeg.width, jpeg.height) == (width, height)


def test_a_jpeg_size_is_found_after_other_segments():
    exif = b"\xff\xe1" + struct.pack(">H", 2 + 1000) + b"\x00" * 1000
    body = samples.jpeg(33, 44)
    info = sniff(body[:2] + exif + body[2:])
    assert (info.width, info.height) == (33, 44)


def test_wav_audio_details_are_read():
    info = sniff(samples.wav(seconds=0.5, rate=8000))
    assert (info.sample_rate, info.bit_depth, info.num_channels, info.duration) == (
        8000,
        16,
        1,
        0.5,
    )


@given(
    key=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1
    )
)
def test_percent_encoded_keys_round_trip(key):
    url = f"https://my-bucket.s3.eu-west-2.amazonaws.com/{quote(key)}"
    location = parse_object_url(url)
    assert (location.bucket, location.key, location.region) == ("my-bucket", key, "eu-west-2")


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [
        ("https://bk-1.s3.us-east-1.amazonaws.com/a/b.png", "bk-1", "a/b.png"),
        ("https://bkt.s3.amazonaws.com/a%2Bb+c.png", "bkt", "a+b+c.png"),
        ("https://s3.eu-west-1.amazonaws.com/bkt/k/x.png", "bkt", "k/x.png"),
        ("https://s3.amazonaws.com/bkt/x.png", "bkt", "x.png"),
    ],
)
def test_accepted_url_forms(url, bucket, key):
    location = parse_object_url(url)
    assert (location.bucket, location.key) == (bucket, key)


def test_the_mrap_form_carries_account_and_alias():
    location = parse_object_url(
        "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/dir/x%20y.png"
    )
    assert (location.mrap_account, location.mrap_alias, location.key) == (
        "123456789012",
        "mfzwi23gnjvgw.mrap",
        "dir/x y.png",
    )


@pytest.mark.parametrize(
    "url",
    [
        "s3://bkt/k.png",
        "http://bkt.s3.amazonaws.com/k.png",
        "https://bkt.s3.amazonaws.com/",
        "https://s3.amazonaws.com/bkt",
        "https://bkt.s3.amazonaws.com/k.png?versionId=1",
        "https://storage.googleapis.com/bkt/k.png",
        "https://bkt.s3.amazonaws.com/a b.png",
        " https://bkt.s3.amazonaws.com/k.png",
        "https://b.s3.amazonaws.com/k.png",
    ],
)
def test_refused_url_forms(url):
    with pytest.raises(UnitFailure):
        parse_object_url(url)


SCHEMA = {
    "n": {"ty": "number", "format": "F64"},
    "b": {"ty": "boolean"},
    "s": {"ty": "varchar", "max_length": 3},
    "d": {"ty": "datetime", "timezone": "UTC"},
    "u": {"ty": "uuid"},
    "e": {"ty": "enum", "values": ["x", "y"]},
    "v": {"ty": "embedding", "size": 2, "api": None},
    "h": {"ty": "variant", "hint": "number"},
    "gone": {"ty": "tombstone", "deleted_ty": None},
}


def test_conforming_metadata_passes():
    metadata = {
        "n": 1.5,
        "b": False,
        "s": "abc",
        "d": "2026-01-02T03:04:05Z",
        "u": "6f1c1f5e-4d4f-4b8a-9a51-3a2b1c0d9e8f",
        "e": "y",
        "v": [0.1, 2],
        "h": 3,
        "undeclared": {"anything": True},
        "n2": None,
    }
    assert schema_violations(metadata, SCHEMA) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("n", True), ("n", "1"), ("b", 0), ("s", "abcd"), ("d", "yesterday"), ("u", "nope"), ("e", "z"),
     ("v", [1]), ("v", ["a", "b"]), ("h", "3"), ("gone", 1)],
)  # fmt: skip
def test_each_type_violation_is_reported(key, value):
    (problem,) = schema_violations({key: value}, SCHEMA)
    assert problem.startswith(f"key {key!r}")


def test_the_response_checker_rejects_a_drifted_response():
    """The teardown check can fail: a folder without pathToRoot is not an SDK StorageFolder."""
    folder = {
        "uuid": "6f1c1f5e-4d4f-4b8a-9a51-3a2b1c0d9e8f",
        "parent": None,
        "name": "f",
        "description": "",
        "clientMetadata": None,
        "owner": "me",
        "createdAt": "2026-01-01T00:00:00+00:00",
        "lastEditedAt": "2026-01-01T00:00:00+00:00",
        "userRole": "admin",
        "syncedDatasetHash": None,
        "pathToRoot": [],
    }
    check_exchange(
        Exchange("GET", f"/v2/public/storage/folders/{folder['uuid']}", None, 200, folder)
    )
    del folder["pathToRoot"]
    with pytest.raises(Exception, match=r"pathToRoot|path_to_root"):
        check_exchange(
            Exchange("GET", f"/v2/public/storage/folders/{folder['uuid']}", None, 200, folder)
        )
    with pytest.raises(AssertionError, match="no SDK model"):
        check_exchange(Exchange("GET", "/v2/public/unknown/route", None, 200, {}))
