"""The stages on their own: scan, classify, group, sidecar pairing."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from botocore.stub import Stubber

from ingest.errors import UserError
from ingest.listing.paginator import S3Lister
from ingest.listing.scan import ListedObject, normalise_prefixes, scan
from ingest.model import Entry
from ingest.plan.classify import DICOM, SIDECAR, classify
from ingest.plan.group import MAX_TITLE, SEQUENCE_VIDEO, FolderRules, Item, group, title_for
from ingest.plan.pipeline import items, validated
from ingest.plan.report import PlanReport
from ingest.settings import GroupRule


def listed(*keys: str) -> list[ListedObject]:
    return [ListedObject(key, 1, "etag-" + key) for key in keys]


def test_parallel_prefixes_merge_into_key_order_whatever_the_timing() -> None:
    def lister(prefix: str):
        keys = sorted(f"{prefix}{i:03d}.png" for i in range(250))
        for start in range(0, len(keys), 7):
            time.sleep(0.001 if prefix == "a/" else 0)  # one prefix is slow
            yield listed(*keys[start : start + 7])

    prefixes = ["d/", "c/", "a/", "b/", "a/x/", "a0"]
    merged = [obj.key for obj in scan(lister, prefixes, workers=2)]
    assert merged == sorted(merged)
    assert len(merged) == 5 * 250  # 'a/x/' is covered by 'a/': listed once


def test_normalised_prefixes_drop_covered_ones() -> None:
    assert normalise_prefixes(["b/", "a/", "a/b/", "a/", "ab"]) == ["a/", "ab", "b/"]
    assert normalise_prefixes(["", "x/"]) == [""]


def test_a_listing_error_in_a_worker_reaches_the_caller() -> None:
    def lister(prefix: str):
        if prefix == "b/":
            raise UserError("access denied listing s3://bucket/b/")
        yield listed(prefix + "1.png")

    with pytest.raises(UserError, match="access denied"):
        list(scan(lister, ["a/", "b/"], workers=2))
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name.startswith("scan:")]


def stubbed_s3(error_code: str | None = None, contents: list | None = None):
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(s3)
    if error_code:
        stubber.add_client_error(
            "list_objects_v2", service_error_code=error_code, http_status_code=403
        )
    else:
        stubber.add_response("list_objects_v2", {"Contents": contents or [], "KeyCount": 0})
    stubber.activate()
    return s3


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "AccessDenied",
            r"access denied listing s3://media/images/ \(AccessDenied\).*s3:ListBucket",
        ),
        ("NoSuchBucket", r"bucket of s3://media/images/ does not exist"),
    ],
)
def test_listing_errors_are_one_line_user_errors(code, message) -> None:
    with pytest.raises(UserError, match=message):
        list(S3Lister(stubbed_s3(code), "media")("images/"))


def test_an_empty_prefix_is_an_error() -> None:
    with pytest.raises(UserError, match="s3://media/nothing/ holds no objects"):
        list(S3Lister(stubbed_s3(), "media")("nothing/"))


@pytest.mark.parametrize(
    ("key", "content_type", "kind"),
    [
        ("a/photo.JPG", None, "images"),
        ("a/clip.MoV", None, "videos"),
        ("scan.nii.gz", None, "nifti"),
        ("x/slice.DCM", None, DICOM),
        ("a/photo.jpg.metadata.json", None, SIDECAR),
        ("notes.json", None, "text"),
        ("blob", "image/png; charset=binary", "images"),
        ("blob", "application/dicom", DICOM),
        ("archive.tar.gz", None, None),
        (".hidden", None, None),
        ("folder/", None, None),
    ],
)
def test_classification_by_extension_then_content_type(key, content_type, kind) -> None:
    assert classify(key, content_type)[0] == kind


def test_groups_close_only_when_the_listing_leaves_the_folder() -> None:
    rules = FolderRules([GroupRule(folders="g/*", **{"as": "imageSequence"})])
    keys = [
        "g/a/1.png",
        "g/a/1/x.png",  # a subfolder sorts between the group's frames
        "g/a/10.png",
        "g/a/2.png",
        "g/b/s-2.dcm",
        "g/b/s-10.dcm",
        "g/b/s-1.dcm",
        "g/b/still.png",
        "z.png",
    ]
    grouped = list(
        group([Item(key, "e", classify(key)[0]) for key in sorted(keys)], rules, "u:".__add__)
    )
    assert [(g.entry.kind, g.name, g.entry.keys, g.entry.create_video) for g in grouped] == [
        ("images", "g/a/1/x.png", ("g/a/1/x.png",), False),
        ("image_groups", "g/a/", ("g/a/1.png", "g/a/2.png", "g/a/10.png"), True),
        ("dicom_series", "g/b/", ("g/b/s-1.dcm", "g/b/s-2.dcm", "g/b/s-10.dcm"), False),
        ("image_groups", "g/b/ (images)", ("g/b/still.png",), True),
        ("images", "z.png", ("z.png",), False),
    ]


def test_the_video_encord_writes_for_a_sequence_is_left_out_not_imported() -> None:
    rules = FolderRules(
        [
            GroupRule(folders="seq/*", **{"as": "imageSequence"}),
            GroupRule(folders="grp/*", **{"as": "imageGroup"}),
        ]
    )
    keys = ["grp/a/1.png", "grp/a/clip.mp4", "seq/a/1.png", "seq/a/2.png", "seq/a/9f3c.mp4"]
    left_out: list[tuple[str, str]] = []
    grouped = list(
        group(
            [Item(key, "e", classify(key)[0]) for key in keys],
            rules,
            "u:".__add__,
            left_out=lambda key, reason: left_out.append((key, reason)),
        )
    )
    assert [(g.entry.kind, g.entry.keys) for g in grouped] == [
        ("videos", ("grp/a/clip.mp4",)),  # only a sequence's folder holds Encord's video
        ("image_groups", ("grp/a/1.png",)),
        ("image_groups", ("seq/a/1.png", "seq/a/2.png")),
    ]
    assert left_out == [("seq/a/9f3c.mp4", SEQUENCE_VIDEO)]


def test_dicom_series_can_be_switched_off() -> None:
    keys = ["d/1.dcm", "d/2.dcm"]
    rules = FolderRules([], dicom_series=False)
    grouped = list(group([Item(k, "e", DICOM) for k in keys], rules, "u:".__add__))
    assert [(g.entry.kind, g.entry.keys, g.entry.urls) for g in grouped] == [
        ("dicom_series", ("d/1.dcm",), ("u:d/1.dcm",)),
        ("dicom_series", ("d/2.dcm",), ("u:d/2.dcm",)),
    ]


def test_long_titles_are_shortened_stably_and_stay_distinct() -> None:
    a, b = "x/" + "a" * 400 + "1.png", "x/" + "a" * 400 + "2.png"
    assert len(title_for(a)) == MAX_TITLE
    assert title_for(a) == title_for(a) != title_for(b)
    assert title_for("short.png") == "short.png"


def test_sidecars_pair_with_their_object_even_with_keys_in_between() -> None:
    report = PlanReport()
    objects = listed(
        "a.png",
        "a.png.1.png",  # sorts between a.png and its sidecar
        "a.png.metadata.json",
        "b.png.metadata.json",  # no b.png: orphan
        "c.png",
    )
    result = list(items(objects, lambda key: False, lambda key: None, report))
    assert [(item.key, item.sidecar, item.sidecar_etag) for item in result] == [
        ("a.png", "a.png.metadata.json", "etag-a.png.metadata.json"),  # for a caching reader
        ("a.png.1.png", None, None),
        ("c.png", None, None),
    ]
    assert (report.sidecars, report.orphan_sidecars, report.objects) == (2, 1, 5)


def test_an_item_is_released_as_soon_as_the_listing_passes_its_sidecars_key() -> None:
    # Keys that start with an item's key, before and past its sidecar's key; then a folder
    # named like the item, whose keys (all past the sidecar's) must not hold the item back.
    keys = [
        "a.png",
        "a.png.a.png",  # before `a.png.metadata.json`: a.png still waits
        "a.png.zz.png",  # past it: a.png is released, though the key starts with `a.png`
        "b.png",
        *(f"b.png/{i}.png" for i in range(100)),
    ]
    pulled = []

    def listing():
        for obj in listed(*keys):
            pulled.append(obj.key)
            yield obj

    released = items(listing(), None, lambda key: None, PlanReport())
    assert next(released).key == "a.png" and pulled[-1] == "a.png.zz.png"
    assert next(released).key == "a.png.a.png" and pulled[-1] == "a.png.zz.png"
    assert next(released).key == "a.png.zz.png" and pulled[-1] == "b.png"
    assert next(released).key == "b.png" and pulled[-1] == "b.png/0.png"
    assert [item.key for item in released] == keys[4:]


def test_entries_before_an_invalid_one_are_passed_on_then_it_is_refused() -> None:
    prefix = "https://b.s3.eu-west-2.amazonaws.com/"
    keys = [f"{i}.png" for i in range(10)]
    keys[6] = "6 bad.png"  # a URL left with its space

    def entries():
        for key in keys:
            yield Entry("images", key, (key,), (prefix + key,))

    passed = []
    with pytest.raises(UserError, match=r"entry '6 bad\.png' would be an invalid manifest entry"):
        for entry in validated(entries()):
            passed.append(entry.title)
    assert passed == keys[:6]
