"""Strict upload jobs: size caps, concurrent jobs, DICOM series from the headers, image sequences."""

from __future__ import annotations

import time

import pytest
from encord.exceptions import PayloadTooLargeError
from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import StorageItemType
from sandbox_support import EXTERNAL_ID, ROLE_ARN, object_url

from demo import samples
from sandbox.s3_access import S3Gateway


def _images(name, keys, **extra):
    return {"images": [{"objectUrl": object_url(name, key)} for key in keys], **extra}


def _finish(folder, job):
    return folder.add_private_data_to_folder_get_result(job)


def test_a_job_over_the_entry_cap_is_413(start_sandbox, connect, bucket):
    sandbox = start_sandbox(max_job_entries=5)
    integration_id = sandbox.add_integration("b", ROLE_ARN, EXTERNAL_ID)
    folder = connect(sandbox, max_retries=0).create_storage_folder("f")
    keys = [f"{i}.png" for i in range(6)]
    name = bucket({key: samples.png() for key in keys})
    with pytest.raises(PayloadTooLargeError):
        folder.add_private_data_to_folder_start(integration_id, _images(name, keys))
    job = folder.add_private_data_to_folder_start(integration_id, _images(name, keys[:5]))
    assert _finish(folder, job).units_done_count == 5


def test_the_entry_cap_defaults_to_10000_and_can_be_changed_at_run_time(sandbox, encord, bucket):
    assert sandbox.readings().max_job_entries == 10_000
    integration_id = sandbox.add_integration("b", ROLE_ARN, EXTERNAL_ID)
    sandbox.set_readings(max_job_entries=1)
    name = bucket({"a.png": samples.png(), "b.png": samples.png()})
    folder = encord.create_storage_folder("f")
    with pytest.raises(PayloadTooLargeError):
        folder.add_private_data_to_folder_start(integration_id, _images(name, ["a.png", "b.png"]))


def test_a_request_body_over_the_cap_is_413(start_sandbox, connect, bucket):
    sandbox = start_sandbox(max_request_bytes=4096)
    integration_id = sandbox.add_integration("b", ROLE_ARN, EXTERNAL_ID)
    folder = connect(sandbox, max_retries=0).create_storage_folder("f")
    name = bucket({"a.png": samples.png()})
    spec = {
        "images": [{"objectUrl": object_url(name, "a.png"), "clientMetadata": {"pad": "x" * 5000}}]
    }
    with pytest.raises(PayloadTooLargeError):
        folder.add_private_data_to_folder_start(integration_id, spec)
    assert list(folder.list_items()) == []
    assert sandbox.readings().max_request_bytes == 4096


def _overlapping_jobs(sandbox, encord, integration_id, bucket):
    """A slow job and a fast resubmission of the same URL; the fast one settles first."""
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    spec = _images(name, ["a.png"], skip_duplicate_urls=True)
    sandbox.inject_faults({"job": {"unitDelaySeconds": 1.5}, "count": 1})
    slow = folder.add_private_data_to_folder_start(integration_id, spec)
    fast = folder.add_private_data_to_folder_start(integration_id, spec)
    fast_result = _finish(folder, fast)
    assert fast_result.status == LongPollingStatus.DONE
    still = folder.add_private_data_to_folder_get_result(slow, timeout_seconds=0)
    assert still.status == LongPollingStatus.PENDING  # they really overlap
    slow_result = _finish(folder, slow)
    assert slow_result.status == LongPollingStatus.DONE
    return folder, fast_result, slow_result


def test_two_concurrent_jobs_both_import_the_same_url(sandbox, encord, integration_id, bucket):
    folder, fast, slow = _overlapping_jobs(sandbox, encord, integration_id, bucket)
    items = list(folder.list_items())
    assert [item.name for item in items] == ["a.png", "a.png"]
    assert {i.item_uuid for i in fast.items_with_names + slow.items_with_names} == {
        item.uuid for item in items
    }


def test_concurrent_jobs_dedupe_under_the_switch(sandbox, encord, integration_id, bucket):
    sandbox.set_readings(dedupe_concurrent_jobs=True)
    folder, fast, slow = _overlapping_jobs(sandbox, encord, integration_id, bucket)
    (item,) = folder.list_items()
    assert [i.item_uuid for i in fast.items_with_names] == [item.uuid]
    assert slow.items_with_names == []


def test_jobs_do_not_queue_behind_each_other(sandbox, encord, integration_id, bucket):
    keys = [f"{i}.png" for i in range(16)]
    name = bucket({key: samples.png() for key in [*keys, "quick.png"]})
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults({"job": {"unitDelaySeconds": 1.0}, "count": 1})
    slow = folder.add_private_data_to_folder_start(integration_id, _images(name, keys))
    started = time.monotonic()
    quick = _finish(
        folder,
        folder.add_private_data_to_folder_start(integration_id, _images(name, ["quick.png"])),
    )
    assert quick.status == LongPollingStatus.DONE
    assert time.monotonic() - started < 1.0  # not behind the slow job's 16 units
    assert _finish(folder, slow).units_done_count == 16


def test_a_dicom_unit_holding_two_series_yields_two_items(encord, integration_id, bucket):
    name = bucket(
        {
            "d/0.dcm": samples.dicom(0, series_uid="1.2.826.0.1.1"),
            "d/1.dcm": samples.dicom(1, series_uid="1.2.826.0.1.2"),
            "d/2.dcm": samples.dicom(2, series_uid="1.2.826.0.1.1"),
        }
    )
    urls = [object_url(name, f"d/{i}.dcm") for i in range(3)]
    folder = encord.create_storage_folder("f")
    spec = {
        "dicom_series": [{"title": "scan", **{f"objectUrl_{i}": u for i, u in enumerate(urls)}}]
    }
    result = _finish(folder, folder.add_private_data_to_folder_start(integration_id, spec))
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    assert result.units_done_count == 1 and len(result.items_with_names) == 2
    items = {item.dicom_series_uid: item for item in folder.list_items()}
    assert set(items) == {"1.2.826.0.1.1", "1.2.826.0.1.2"}
    assert all(item.item_type == StorageItemType.DICOM_SERIES for item in items.values())
    assert (items["1.2.826.0.1.1"].frame_count, items["1.2.826.0.1.2"].frame_count) == (2, 1)
    frames = [child.url for child in items["1.2.826.0.1.1"].get_child_items()]
    assert frames == [urls[0], urls[2]]
    dataset = encord.get_dataset(
        encord.create_dataset("d", None, create_backing_folder=False).dataset_hash
    )
    dataset.link_items([item.uuid for item in items.values()])
    rows = dataset.list_data_rows()
    assert len(rows) == 2 and all(row.file_link is None for row in rows)


def test_a_dicom_file_without_a_readable_header_fails_its_unit(encord, integration_id, bucket):
    broken = samples.dicom(0)[:140]  # preamble and magic, then nothing
    name = bucket({"x.dcm": broken})
    folder = encord.create_storage_folder("f")
    spec = {"dicom_series": [{"title": "x", "objectUrl_0": object_url(name, "x.dcm")}]}
    result = _finish(
        folder, folder.add_private_data_to_folder_start(integration_id, spec, ignore_errors=True)
    )
    (error,) = result.unit_errors
    assert "SeriesInstanceUID" in error.error or "DICOM header" in error.error


def test_an_image_sequence_writes_its_video_into_the_bucket(aws, encord, integration_id, bucket):
    name = bucket({f"seq/{i}.png": samples.png(8, 8, shade=i) for i in range(2)})
    folder = encord.create_storage_folder("f")
    frames = {f"objectUrl_{i}": object_url(name, f"seq/{i}.png") for i in range(2)}
    spec = {"image_groups": [{"title": "drive", "createVideo": True, **frames}]}
    result = _finish(folder, folder.add_private_data_to_folder_start(integration_id, spec))
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    (item,) = folder.list_items()
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=name)["Contents"]}
    assert keys == {"seq/0.png", "seq/1.png", f"seq/{item.uuid}.mp4"}


@pytest.mark.parametrize(("lifetime", "expected_calls"), [(3600, 1), (60, 4)])
def test_role_credentials_are_kept_until_shortly_before_they_expire(
    monkeypatch, encord, integration_id, bucket, lifetime, expected_calls
):
    calls = []
    original = S3Gateway._assume_role

    def counting(self, role_arn, external_id):
        calls.append(role_arn)
        credentials, _ = original(self, role_arn, external_id)
        return credentials, time.time() + lifetime

    monkeypatch.setattr(S3Gateway, "_assume_role", counting)
    keys = [f"{i}.png" for i in range(4)]
    name = bucket({key: samples.png() for key in keys})
    folder = encord.create_storage_folder("f")
    result = _finish(
        folder, folder.add_private_data_to_folder_start(integration_id, _images(name, keys))
    )
    assert result.units_done_count == 4
    assert len(calls) == expected_calls  # 60 s is inside the renewal margin: renewed every time
