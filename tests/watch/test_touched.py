"""The listing over touched keys: which units a key belongs to (pure), and what the bucket
holds for them now (moto)."""

from __future__ import annotations

import uuid

from ingest.listing.touched import list_touched, scope_of
from ingest.plan.group import FolderRules
from ingest.settings import GroupRule
from standins.local_aws import LocalAws

RULES = FolderRules([GroupRule.model_validate({"folders": "scans/*", "as": "imageGroup"})])


def test_a_frame_of_a_grouped_folder_re_plans_the_whole_folder() -> None:
    scope = scope_of(
        ["scans/a/frame-9.png", "dicom/s1/x.dcm", "images/cat.png", "raw/blob"], RULES, [""]
    )
    assert scope.folders == {"scans/a/", "dicom/s1/", "raw/"}  # no extension: maybe DICOM
    assert scope.keys == {"images/cat.png"}
    assert scope.covers("scans/a/frame-1.png") and not scope.covers("scans/a/b/frame-1.png")


def test_a_touched_sidecar_re_plans_its_object() -> None:
    scope = scope_of(["images/cat.png.metadata.json"], RULES, [""])
    assert scope.keys == {"images/cat.png"} and not scope.folders


def test_without_dicom_series_a_dcm_is_a_single_object() -> None:
    scope = scope_of(["dicom/s1/x.dcm"], FolderRules([], dicom_series=False), [""])
    assert scope.keys == {"dicom/s1/x.dcm"}


def test_keys_outside_the_prefixes_are_out_of_scope() -> None:
    scope = scope_of(["images/cat.png", "other/dog.png"], RULES, ["images/"])
    assert scope.keys == {"images/cat.png"}


def test_the_bucket_as_it_is_now_in_key_order(aws: LocalAws) -> None:
    s3 = aws.client("s3")
    bucket = f"touched-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for key in [
        "images/dog 1+2 %41 été.png",
        "images/dog 1+2 %41 été.png.metadata.json",
        "scans/a/frame-1.png",
        "scans/a/frame-2.png",
        "scans/a/sub/frame-1.png",
        "images/unrelated.png",
    ]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    listing = list_touched(
        s3,
        bucket,
        ["images/dog 1+2 %41 été.png", "scans/a/frame-2.png", "scans/a/frame-3.png", "gone.png"],
        RULES,
        [""],
        workers=4,
    )

    assert [obj.key for obj in listing] == [
        "images/dog 1+2 %41 été.png",
        "images/dog 1+2 %41 été.png.metadata.json",
        "scans/a/frame-1.png",  # the whole group folder, its subfolder aside
        "scans/a/frame-2.png",
    ]
    assert all(obj.etag and '"' not in obj.etag and obj.size == 1 for obj in listing)
    assert listing.absent == ["gone.png", "scans/a/frame-3.png"]
