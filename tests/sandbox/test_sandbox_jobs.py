"""Upload jobs: long polls, cancellation, re-runs with skip_duplicate_urls and upsert_metadata."""

from __future__ import annotations

import json
import time

from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import DataUploadImage, DataUploadItems, DataUploadVideo
from sandbox_support import EXTERNAL_ID, ROLE_ARN, TEST_LONG_POLL_CAP_SECONDS, object_url

from demo import samples
from standins.s3_listing import start_standin


def _images(name, keys, **extra):
    return {"images": [{"objectUrl": object_url(name, key)} for key in keys], **extra}


def test_polls_are_held_until_the_cap_while_the_job_runs(sandbox, encord, integration_id, bucket):
    """The SDK never sleeps between polls; the server must hold each one, or it would spin."""
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    job_seconds = 2.5 * TEST_LONG_POLL_CAP_SECONDS
    sandbox.inject_faults({"job": {"unitDelaySeconds": job_seconds}})
    job = folder.add_private_data_to_folder_start(integration_id, _images(name, ["a.png"]))
    started = time.monotonic()
    result = folder.add_private_data_to_folder_get_result(job)  # a week's timeout, as by default
    assert result.status == LongPollingStatus.DONE
    assert time.monotonic() - started >= job_seconds * 0.9
    polls = [e for e in sandbox.exchanges() if e.method == "GET" and e.path.endswith(str(job))]
    # About one poll per second of work (a server answering at once would see hundreds).
    assert 3 <= len(polls) <= 4
    assert [e.body["status"] for e in polls] == ["PENDING"] * (len(polls) - 1) + ["DONE"]
    assert all(e.body["unitsPendingCount"] == 1 for e in polls[:-1])


def test_a_poll_returns_as_soon_as_the_job_settles(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults({"job": {"unitDelaySeconds": 0.3}})
    job = folder.add_private_data_to_folder_start(integration_id, _images(name, ["a.png"]))
    started = time.monotonic()
    assert folder.add_private_data_to_folder_get_result(job).status == LongPollingStatus.DONE
    assert time.monotonic() - started < TEST_LONG_POLL_CAP_SECONDS


def test_cancel_stops_pending_units_and_keeps_processed_ones(
    sandbox, encord, integration_id, bucket
):
    keys = [f"{i}.png" for i in range(40)]
    name = bucket({key: samples.png() for key in keys})
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults({"job": {"unitDelaySeconds": 0.3}})  # 8 workers: 1.5 s in all
    job = folder.add_private_data_to_folder_start(
        integration_id, _images(name, keys), ignore_errors=True
    )
    while (
        folder.add_private_data_to_folder_get_result(job, timeout_seconds=0).units_done_count == 0
    ):
        time.sleep(0.02)
    cancelled = folder.add_data_to_folder_job_cancel(job)
    result = folder.add_private_data_to_folder_get_result(job)
    assert result.status == LongPollingStatus.CANCELLED
    assert 0 < cancelled.units_cancelled_count == result.units_cancelled_count < 40
    assert result.units_done_count + result.units_cancelled_count == 40
    assert len(list(folder.list_items())) == result.units_done_count == len(result.items_with_names)


def test_a_client_that_goes_away_does_not_affect_the_job(sandbox, connect, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    starter = connect(sandbox, max_retries=0)
    folder = starter.create_storage_folder("f")
    job = folder.add_private_data_to_folder_start(integration_id, _images(name, ["a.png"]))
    del starter, folder
    later = connect(sandbox, max_retries=0)
    (folder,) = later.find_storage_folders(search="f")
    assert folder.add_private_data_to_folder_get_result(job).status == LongPollingStatus.DONE


def _rerun_with_one_new_image(folder, integration_id, name):
    first = folder.add_private_data_to_folder_get_result(
        folder.add_private_data_to_folder_start(
            integration_id, _images(name, ["a.png"], skip_duplicate_urls=True)
        )
    )
    second = folder.add_private_data_to_folder_get_result(
        folder.add_private_data_to_folder_start(
            integration_id, _images(name, ["a.png", "b.png"], skip_duplicate_urls=True)
        )
    )
    assert second.status == LongPollingStatus.DONE and second.units_done_count == 2
    assert sorted(item.name for item in folder.list_items()) == ["a.png", "b.png"]
    return first, second


def test_skip_duplicate_urls_makes_a_rerun_idempotent(sandbox, encord, integration_id, bucket):
    """items_with_names is what the job added: the skipped duplicate is not in it."""
    name = bucket({"a.png": samples.png(), "b.png": samples.png()})
    folder = encord.create_storage_folder("f")
    first, second = _rerun_with_one_new_image(folder, integration_id, name)
    (a,) = first.items_with_names
    (b,) = second.items_with_names
    assert (a.name, b.name) == ("a.png", "b.png")
    assert {i.uuid for i in folder.list_items()} == {a.item_uuid, b.item_uuid}


def test_skipped_duplicates_are_reported_under_the_switch(sandbox, encord, integration_id, bucket):
    sandbox.set_readings(report_skipped_duplicates=True)
    name = bucket({"a.png": samples.png(), "b.png": samples.png()})
    folder = encord.create_storage_folder("f")
    first, second = _rerun_with_one_new_image(folder, integration_id, name)
    assert {i.item_uuid for i in first.items_with_names} < {
        i.item_uuid for i in second.items_with_names
    }
    assert sorted(i.name for i in second.items_with_names) == ["a.png", "b.png"]


def test_without_skip_duplicate_urls_a_rerun_duplicates(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    for _ in range(2):
        job = folder.add_private_data_to_folder_start(integration_id, _images(name, ["a.png"]))
        folder.add_private_data_to_folder_get_result(job)
    assert [item.name for item in folder.list_items()] == ["a.png", "a.png"]


def test_upsert_metadata_updates_the_existing_item(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")

    def upload(metadata, upsert):
        spec = {
            "images": [{"objectUrl": object_url(name, "a.png"), "clientMetadata": metadata}],
            "skip_duplicate_urls": True,
            "upsert_metadata": upsert,
        }
        return folder.add_private_data_to_folder_get_result(
            folder.add_private_data_to_folder_start(integration_id, spec)
        )

    upload({"v": 1}, upsert=False)
    upload({"v": 2}, upsert=False)
    assert [item.client_metadata for item in folder.list_items()] == [{"v": 1}]
    upload({"v": 3}, upsert=True)
    assert [item.client_metadata for item in folder.list_items()] == [{"v": 3}]


def test_data_upload_items_are_accepted(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png(5, 6), "v.mp4": samples.mp4()})
    folder = encord.create_storage_folder("f")
    items = DataUploadItems(
        images=[
            DataUploadImage(
                object_url=object_url(name, "a.png"), title="A", client_metadata={"k": "v"}
            )
        ],
        videos=[DataUploadVideo(object_url=object_url(name, "v.mp4"))],
        skip_duplicate_urls=True,
    )
    result = folder.add_private_data_to_folder_get_result(
        folder.add_private_data_to_folder_start(integration_id, items)
    )
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    listed = {item.name: item for item in folder.list_items()}
    assert set(listed) == {"A", "v.mp4"}
    assert (listed["A"].width, listed["A"].client_metadata) == (5, {"k": "v"})


def test_a_spec_file_name_is_reported_back(sandbox, encord, integration_id, bucket, tmp_path):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    manifest = tmp_path / "manifest-001.json"
    manifest.write_text(json.dumps(_images(name, ["a.png"])))
    result = folder.add_private_data_to_folder_get_result(
        folder.add_private_data_to_folder_start(integration_id, manifest)
    )
    assert result.file_name == "manifest-001.json"


def test_objects_are_read_from_their_own_s3_endpoint_with_the_role_assumed_through_sts(
    aws, start_sandbox, connect
):
    """S3 at the stand-in's computed bucket, STS at moto: each unit reads its object there."""
    with start_standin(3, images=40, images_bucket="computed-images") as standin:
        sandbox = start_sandbox(aws_s3_endpoint_url=standin.endpoint_url)
        integration = sandbox.add_integration("computed", ROLE_ARN, EXTERNAL_ID)
        folder = connect(sandbox, max_retries=0).create_storage_folder("f")
        keys = ["p00/img-0000000.png", "p01/img-0000017.png", "p01/img-0000000.png"]
        job = folder.add_private_data_to_folder_start(
            integration, _images("computed-images", keys), ignore_errors=True
        )
        result = folder.add_private_data_to_folder_get_result(job)

    assert result.status == LongPollingStatus.DONE
    assert sorted(item.name for item in result.items_with_names) == [
        "img-0000000.png",
        "img-0000017.png",
    ]
    # The third key is not in the computed bucket: image 0 lives under p00/.
    assert len(result.unit_errors) == 1 and "does not exist" in result.unit_errors[0].error
    assert all(item.width == 4 for item in folder.list_items())
