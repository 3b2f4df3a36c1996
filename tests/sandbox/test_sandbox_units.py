"""Upload units: every supported type is accepted, and each documented failure fails its unit."""

from __future__ import annotations

import pytest
from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import StorageItemType
from sandbox_support import object_url

from demo import samples
from sandbox.s3_access import without_account_host_prefix
from standins.local_aws import REGION


def _run(folder, integration_id, spec, ignore_errors=True):
    job = folder.add_private_data_to_folder_start(integration_id, spec, ignore_errors=ignore_errors)
    return folder.add_private_data_to_folder_get_result(job)


@pytest.fixture
def folder(encord):
    return encord.create_storage_folder("units")


@pytest.mark.parametrize(
    ("manifest_key", "body", "item_type", "mime_type"),
    [
        ("images", samples.png(), StorageItemType.IMAGE, "image/png"),
        ("images", samples.jpeg(), StorageItemType.IMAGE, "image/jpeg"),
        ("videos", samples.mp4(), StorageItemType.VIDEO, "video/mp4"),
        ("audio", samples.wav(), StorageItemType.AUDIO, "audio/x-wav"),
        ("text", samples.text(), StorageItemType.PLAIN_TEXT, "text/plain"),
        ("pdf", samples.pdf(), StorageItemType.PDF, "application/pdf"),
        ("nifti", samples.nifti(), StorageItemType.NIFTI, "application/x-nifti"),
    ],
    ids=["png", "jpeg", "mp4", "wav", "text", "pdf", "nifti"],
)
def test_each_single_file_type_is_imported(
    folder, integration_id, bucket, manifest_key, body, item_type, mime_type
):
    name = bucket({"file": body})
    result = _run(folder, integration_id, {manifest_key: [{"objectUrl": object_url(name, "file")}]})
    assert result.status == LongPollingStatus.DONE and result.unit_errors == []
    (item,) = folder.list_items()
    assert (item.item_type, item.mime_type, item.file_size) == (item_type, mime_type, len(body))


def test_image_dimensions_are_read_from_the_bytes(folder, integration_id, bucket):
    name = bucket({"wide.png": samples.png(640, 4), "tall.jpg": samples.jpeg(3, 480)})
    spec = {"images": [{"objectUrl": object_url(name, k)} for k in ("wide.png", "tall.jpg")]}
    assert _run(folder, integration_id, spec).status == LongPollingStatus.DONE
    sizes = {item.name: (item.width, item.height) for item in folder.list_items()}
    assert sizes == {"wide.png": (640, 4), "tall.jpg": (3, 480)}


def test_image_groups_sequences_and_dicom_series_are_one_item_each(folder, integration_id, bucket):
    name = bucket(
        {
            **{f"g/{i}.png": samples.png(20, 10, shade=i) for i in range(3)},
            **{f"d/{i}.dcm": samples.dicom(i) for i in range(2)},
        }
    )
    frames = {f"objectUrl_{i}": object_url(name, f"g/{i}.png") for i in range(3)}
    spec = {
        "image_groups": [
            {"title": "ward", "createVideo": False, **frames},
            {"title": "drive", "createVideo": True, **frames},
        ],
        "dicom_series": [
            {"title": "ct", **{f"objectUrl_{i}": object_url(name, f"d/{i}.dcm") for i in range(2)}}
        ],
    }
    result = _run(folder, integration_id, spec, ignore_errors=False)
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    items = {item.name: item for item in folder.list_items()}
    assert items["ward"].item_type == StorageItemType.IMAGE_GROUP
    assert items["drive"].item_type == StorageItemType.IMAGE_SEQUENCE
    assert items["ct"].item_type == StorageItemType.DICOM_SERIES
    assert (items["ward"].frame_count, items["ward"].width, items["ward"].height) == (3, 20, 10)


@pytest.mark.parametrize(
    "url_form",
    [
        "https://{bucket}.s3.amazonaws.com/{key}",
        "https://s3.{region}.amazonaws.com/{bucket}/{key}",
        "https://s3.amazonaws.com/{bucket}/{key}",
    ],
)
def test_other_s3_url_forms_are_accepted(folder, integration_id, bucket, url_form):
    name = bucket({"dir/a b.png": samples.png()})
    url = url_form.format(bucket=name, key="dir/a%20b.png", region=REGION)
    result = _run(folder, integration_id, {"images": [{"objectUrl": url}]}, ignore_errors=False)
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    assert [item.name for item in folder.list_items()] == ["a b.png"]


def test_a_multi_region_access_point_arn_is_resolved_to_its_bucket(
    aws, folder, integration_id, bucket
):
    name = bucket({"scans/x.png": samples.png()})
    s3control = aws.client("s3control")
    without_account_host_prefix(s3control)
    s3control.create_multi_region_access_point(
        AccountId="123456789012",
        ClientToken="token",
        Details={"Name": f"mrap-{name}", "Regions": [{"Bucket": name}]},
    )
    alias = s3control.get_multi_region_access_point(AccountId="123456789012", Name=f"mrap-{name}")[
        "AccessPoint"
    ]["Alias"]
    url = f"arn:aws:s3::123456789012:accesspoint/{alias}/scans/x.png"
    result = _run(folder, integration_id, {"images": [{"objectUrl": url}]}, ignore_errors=False)
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    assert [item.url for item in folder.list_items()] == [url]


def _single_error(result):
    assert result.status == LongPollingStatus.DONE  # ignore_errors: the job itself succeeds
    assert result.units_error_count == 1
    (error,) = result.unit_errors
    return error


def test_a_missing_object_fails_its_unit_naming_url_and_cause(folder, integration_id, bucket):
    name = bucket({"present.png": samples.png()})
    missing = object_url(name, "absent.png")
    spec = {"images": [{"objectUrl": object_url(name, "present.png")}, {"objectUrl": missing}]}
    result = _run(folder, integration_id, spec)
    error = _single_error(result)
    assert error.object_urls == [missing]
    assert missing in error.error and "does not exist" in error.error
    assert error.action_description == "Uploading image"
    assert [i.name for i in result.items_with_names] == ["present.png"]
    assert [item.name for item in folder.list_items()] == ["present.png"]


@pytest.mark.parametrize(
    ("manifest_key", "body", "message"),
    [
        ("videos", samples.png(), "Expected a video, got a file of type image/png."),
        (
            "images",
            b"PK\x03\x04" + b"\x00" * 26,
            "Expected an image, got a file of type application/zip.",
        ),
        ("images", samples.mp4(), "Expected an image, got a file of type video/mp4."),
        ("dicom_series", samples.png(), "Expected a DICOM file, got a file of type image/png."),
        ("pdf", samples.text(), "Expected a PDF, got a file of type text/plain."),
    ],
    ids=["png-as-video", "zip-as-image", "mp4-as-image", "png-as-dicom", "text-as-pdf"],
)
def test_a_file_of_the_wrong_type_fails_its_unit(
    folder, integration_id, bucket, manifest_key, body, message
):
    name = bucket({"f": body})
    if manifest_key == "dicom_series":
        entry = {"title": "series", "objectUrl_0": object_url(name, "f")}
    else:
        entry = {"objectUrl": object_url(name, "f")}
    error = _single_error(_run(folder, integration_id, {manifest_key: [entry]}))
    assert error.error == f"{object_url(name, 'f')}: {message}"


def test_metadata_violating_the_schema_fails_its_unit(encord, folder, integration_id, bucket):
    schema = encord.metadata_schema()
    schema.add_scalar("score", data_type="number")
    schema.add_enum("split", values=["train", "val"])
    schema.save()
    name = bucket({"a.png": samples.png(), "b.png": samples.png()})
    spec = {
        "images": [
            {
                "objectUrl": object_url(name, "a.png"),
                "clientMetadata": {"score": 0.5, "split": "val", "free": [1]},
            },
            {
                "objectUrl": object_url(name, "b.png"),
                "clientMetadata": {"score": "high", "split": "test"},
            },
        ]
    }
    error = _single_error(_run(folder, integration_id, spec))
    assert error.object_urls == [object_url(name, "b.png")]
    assert "does not conform to the organisation's metadata schema" in error.error
    assert "'score': expected a number" in error.error and "'test' is not one of" in error.error


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("https://b.s3.us-east-1.amazonaws.com/has space.png", "contains whitespace"),
        ("https://b.s3.us-east-1.amazonaws.com/tab\there.png", "contains whitespace"),
        ("s3://b/key.png", "not a supported S3 URL"),
        ("https://example.com/key.png", "not a supported S3 URL"),
    ],
    ids=["space", "tab", "s3-scheme", "not-s3"],
)
def test_urls_encord_does_not_accept_fail_their_unit(folder, integration_id, url, cause):
    error = _single_error(_run(folder, integration_id, {"images": [{"objectUrl": url}]}))
    assert error.error.startswith(url) and cause in error.error


def test_a_title_over_300_characters_fails_its_unit(folder, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    spec = {"images": [{"objectUrl": object_url(name, "a.png"), "title": "t" * 301}]}
    error = _single_error(_run(folder, integration_id, spec))
    assert "301 characters" in error.error


def test_without_ignore_errors_one_failure_fails_the_job_and_commits_nothing(
    folder, integration_id, bucket
):
    name = bucket({"a.png": samples.png()})
    spec = {
        "images": [
            {"objectUrl": object_url(name, "a.png")},
            {"objectUrl": object_url(name, "gone.png")},
        ]
    }
    result = _run(folder, integration_id, spec, ignore_errors=False)
    assert result.status == LongPollingStatus.ERROR
    assert (result.units_done_count, result.units_error_count) == (1, 1)
    assert len(result.errors) == 1 and "gone.png" in result.errors[0]
    assert result.items_with_names == []
    assert list(folder.list_items()) == []


def test_supplied_media_metadata_is_used_without_reading_the_object(folder, integration_id, bucket):
    name = bucket({})
    metadata = {"mimeType": "image/png", "fileSize": 123, "width": 640, "height": 480}
    spec = {"images": [{"objectUrl": object_url(name, "not-there.png"), "imageMetadata": metadata}]}
    result = _run(folder, integration_id, spec, ignore_errors=False)
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    (item,) = folder.list_items()
    assert (item.width, item.height, item.file_size, item.mime_type) == (640, 480, 123, "image/png")
