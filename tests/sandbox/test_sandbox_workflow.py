"""Encord's documented import workflow, run with the unmodified SDK against the sandbox.

The steps follow Encord's guide for cloud data (metadata schema, integration, folder,
upload job, items, dataset, linking, verification) and its legacy dataset upload script.
"""

from __future__ import annotations

import json
import uuid

from encord.orm.dataset import DataLinkDuplicatesBehavior, LongPollingStatus
from encord.orm.storage import StorageItemType
from sandbox_support import object_url

from demo import samples


def test_documented_workflow_end_to_end(sandbox, encord, integration_id, bucket):
    name = bucket(
        {
            "cats/cat 1.png": samples.png(64, 48),
            "dogs/dog.jpg": samples.jpeg(40, 30),
            "videos/clip.mp4": samples.mp4(),
        }
    )

    # Step 3: the metadata schema.
    schema = encord.metadata_schema()
    schema.add_scalar("camera", data_type="varchar")
    schema.add_scalar("captured_at", data_type="datetime")
    schema.add_enum("split", values=["train", "val"])
    schema.add_enum_options("split", values=["test"])
    schema.add_embedding("clip", size=4)
    schema.save()
    reread = encord.metadata_schema()
    assert set(reread.keys()) >= {"camera", "captured_at", "split", "clip"}
    assert reread.get_enum_options("split") == ["test", "train", "val"]
    assert reread.get_embedding_size("clip") == 4

    # Step 2 happened in the web app; the SDK lists it.
    integrations = encord.get_cloud_integrations()
    assert [(i.id, i.title) for i in integrations] == [(integration_id, "test bucket")]

    # Step 5: a folder and an upload job.
    folder = encord.create_storage_folder(
        "houses", "A folder to store my files", client_metadata={"my": "folder_metadata"}
    )
    found = list(encord.find_storage_folders(search="houses", page_size=1))
    assert [f.uuid for f in found] == [folder.uuid]
    spec = {
        "images": [
            {
                "objectUrl": object_url(name, "cats/cat 1.png"),
                "clientMetadata": {
                    "camera": "front",
                    "split": "train",
                    "clip": [0.1, 0.2, 0.3, 0.4],
                },
            },
            {"objectUrl": object_url(name, "dogs/dog.jpg"), "title": "a dog"},
        ],
        "videos": [{"objectUrl": object_url(name, "videos/clip.mp4")}],
        "skip_duplicate_urls": True,
    }
    sandbox.inject_faults({"job": {"pendingPolls": 1}})
    job = folder.add_private_data_to_folder_start(integration_id, spec, ignore_errors=False)
    first = folder.add_private_data_to_folder_get_result(job, timeout_seconds=1)
    assert (
        first.status == LongPollingStatus.PENDING
    )  # "Upload is still in progress, try again later!"
    result = folder.add_private_data_to_folder_get_result(job)
    assert result.status == LongPollingStatus.DONE, result
    assert (result.units_done_count, result.units_error_count, result.unit_errors) == (3, 0, [])
    assert sorted(i.name for i in result.items_with_names) == ["a dog", "cat 1.png", "clip.mp4"]

    # Step 8: list the items and link them to a new dataset.
    items = list(folder.list_items())
    by_name = {item.name: item for item in items}
    assert set(by_name) == {"a dog", "cat 1.png", "clip.mp4"}
    cat = by_name["cat 1.png"]
    assert (cat.item_type, cat.width, cat.height, cat.mime_type) == (
        StorageItemType.IMAGE,
        64,
        48,
        "image/png",
    )
    assert cat.file_size == len(samples.png(64, 48))
    assert cat.client_metadata["camera"] == "front"
    assert by_name["clip.mp4"].item_type == StorageItemType.VIDEO
    assert by_name["a dog"].url == object_url(name, "dogs/dog.jpg")

    created = encord.create_dataset("Houses", dataset_type=None, create_backing_folder=False)
    assert created.backing_folder_uuid is None
    dataset = encord.get_dataset(created.dataset_hash)
    rows = dataset.link_items([item.uuid for item in items])
    assert len(rows) == 3
    again = dataset.link_items([cat.uuid], duplicates_behavior=DataLinkDuplicatesBehavior.SKIP)
    assert again == []

    # Step 9: the file links of every row.
    data_rows = encord.get_dataset(created.dataset_hash).list_data_rows()
    assert sorted(row.file_link for row in data_rows) == sorted(
        object_url(name, key) for key in ("cats/cat 1.png", "dogs/dog.jpg", "videos/clip.mp4")
    )
    assert {row.backing_item_uuid for row in data_rows} == {uuid.UUID(str(i.uuid)) for i in items}


def test_legacy_dataset_upload_as_in_encords_guide(
    sandbox, encord, integration_id, bucket, tmp_path
):
    name = bucket({"a.png": samples.png(), "b.png": samples.png(8, 8)})
    created = encord.create_dataset("Legacy", dataset_type=None, create_backing_folder=True)
    dataset = encord.get_dataset(created.dataset_hash)
    manifest = tmp_path / "upload.json"
    manifest.write_text(
        json.dumps({"images": [{"objectUrl": object_url(name, k)} for k in ("a.png", "b.png")]})
    )

    sandbox.inject_faults({"job": {"pendingPolls": 1}})
    upload_job_id = dataset.add_private_data_to_dataset_start(integration_id, str(manifest))
    res = dataset.add_private_data_to_dataset_get_result(upload_job_id, timeout_seconds=1)
    assert res.status == LongPollingStatus.PENDING
    res = dataset.add_private_data_to_dataset_get_result(upload_job_id)
    assert res.status == LongPollingStatus.DONE
    assert res.data_unit_errors == []
    assert sorted(d.title for d in res.data_hashes_with_titles) == ["a.png", "b.png"]

    rows = encord.get_dataset(created.dataset_hash).list_data_rows()
    assert sorted(r.uid for r in rows) == sorted(d.data_hash for d in res.data_hashes_with_titles)
    backing = encord.get_storage_folder(created.backing_folder_uuid)
    assert sorted(i.name for i in backing.list_items()) == ["a.png", "b.png"]
