"""What mirroring a bucket needs: delete items, unlink rows, summaries, re-pointing, listings."""

from __future__ import annotations

import pytest
from encord.exceptions import InvalidArgumentsError, ResourceNotFoundError
from encord.http.bundle import Bundle
from encord.orm.dataset import LongPollingStatus
from encord.utilities.storage.cloud_data_migration import update_storage_item_cloud_info
from sandbox_support import object_url

from demo import samples


def _import(folder, integration_id, spec):
    result = folder.add_private_data_to_folder_get_result(
        folder.add_private_data_to_folder_start(integration_id, spec)
    )
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    return {i.name: i.item_uuid for i in result.items_with_names}


@pytest.fixture
def imported(encord, integration_id, bucket):
    """A folder with a.png and b.png, and a dataset that uses a.png."""
    name = bucket({"a.png": samples.png(), "b.png": samples.png(), "c.png": samples.png()})
    folder = encord.create_storage_folder("f")
    uuids = _import(
        folder,
        integration_id,
        {"images": [{"objectUrl": object_url(name, k)} for k in ("a.png", "b.png")]},
    )
    dataset = encord.get_dataset(
        encord.create_dataset("d", None, create_backing_folder=False).dataset_hash
    )
    dataset.link_items([uuids["a.png"]])
    return name, folder, uuids, dataset


def test_an_item_used_in_a_dataset_is_not_deleted(encord, imported):
    _, folder, uuids, dataset = imported
    with pytest.raises(InvalidArgumentsError, match="used in datasets"):
        folder.delete_storage_items([uuids["a.png"], uuids["b.png"]])
    assert sorted(i.name for i in folder.list_items()) == ["a.png", "b.png"]  # all or nothing
    encord.get_storage_item(uuids["b.png"]).delete()
    assert [i.name for i in folder.list_items()] == ["a.png"]  # no tombstone listed
    assert len(dataset.list_data_rows()) == 1


def test_deleting_a_used_item_removes_its_rows_under_the_switch(sandbox, encord, imported):
    sandbox.set_readings(linked_item_deletion="cascade")
    _, folder, uuids, dataset = imported
    folder.delete_storage_items([uuids["a.png"]])
    assert [i.name for i in folder.list_items()] == ["b.png"]
    assert dataset.list_data_rows() == []


def test_delete_data_unlinks_rows_and_keeps_the_items(encord, imported):
    _, folder, uuids, dataset = imported
    item = encord.get_storage_item(uuids["a.png"])
    summary = item.get_summary()
    assert summary.used_in_datasets == 1
    assert [d.title for d in summary.accessible_datasets] == ["d"]
    (row,) = dataset.list_data_rows()
    dataset.delete_data([row.uid])
    assert dataset.list_data_rows() == []
    assert item.get_summary().used_in_datasets == 0
    folder.delete_storage_items([uuids["a.png"]])  # no longer used: may go
    with pytest.raises(ResourceNotFoundError):
        dataset.delete_data([row.uid])


def test_get_summary_counts_every_dataset_using_the_item(encord, imported):
    uuids = imported[2]
    other = encord.get_dataset(
        encord.create_dataset("e", None, create_backing_folder=False).dataset_hash
    )
    other.link_items([uuids["a.png"]])
    summary = encord.get_storage_item(uuids["a.png"]).get_summary()
    assert summary.used_in_datasets == 2
    assert sorted(d.title for d in summary.accessible_datasets) == ["d", "e"]
    assert encord.get_storage_item(uuids["b.png"]).get_summary().used_in_datasets == 0


def test_migrate_storage_repoints_an_item_keeping_its_uuid_and_rows(encord, imported):
    name, folder, uuids, dataset = imported
    new_url = object_url(name, "c.png")
    update_storage_item_cloud_info(encord, uuids["a.png"], new_url=new_url)
    item = encord.get_storage_item(uuids["a.png"])
    assert (item.uuid, item.url) == (uuids["a.png"], new_url)
    (row,) = dataset.list_data_rows()
    assert (row.backing_item_uuid, row.file_link) == (uuids["a.png"], new_url)
    assert {i.url for i in folder.list_items()} == {new_url, object_url(name, "b.png")}


def test_migrate_storage_checks_access_and_changes_nothing_on_failure(encord, imported):
    name, _, uuids, _ = imported
    old = encord.get_storage_item(uuids["a.png"]).url
    with pytest.raises(InvalidArgumentsError, match="does not exist"):
        update_storage_item_cloud_info(
            encord, uuids["a.png"], new_url=object_url(name, "missing.png")
        )
    assert encord.get_storage_item(uuids["a.png"]).url == old
    # The SDK also addresses items by their URL.
    update_storage_item_cloud_info(encord, old, new_url=object_url(name, "c.png"))
    assert encord.get_storage_item(uuids["a.png"]).url == object_url(name, "c.png")


def test_migrate_storage_repoints_a_frame_of_a_group(encord, integration_id, bucket):
    name = bucket({f"g/{i}.png": samples.png(shade=i) for i in range(3)})
    folder = encord.create_storage_folder("f")
    frames = {f"objectUrl_{i}": object_url(name, f"g/{i}.png") for i in range(2)}
    uuids = _import(folder, integration_id, {"image_groups": [{"title": "g", **frames}]})
    group = encord.get_storage_item(uuids["g"])
    assert group.url is None  # a group has no URL of its own; its frames do
    first, second = group.get_child_items()
    assert [first.url, second.url] == [frames["objectUrl_0"], frames["objectUrl_1"]]
    with pytest.raises(InvalidArgumentsError, match="re-point its frames"):
        update_storage_item_cloud_info(encord, group.uuid, new_url=object_url(name, "g/2.png"))
    update_storage_item_cloud_info(encord, second.uuid, new_url=object_url(name, "g/2.png"))
    again = encord.get_storage_item(uuids["g"])
    assert [c.url for c in again.get_child_items()] == [
        frames["objectUrl_0"],
        object_url(name, "g/2.png"),
    ]
    assert [c.uuid for c in again.get_child_items()] == [first.uuid, second.uuid]


def test_paged_item_listing_carries_urls_and_survives_deletions(encord, integration_id, bucket):
    keys = [f"img-{i:02d}.png" for i in range(7)]
    name = bucket({key: samples.png() for key in keys})
    folder = encord.create_storage_folder("f")
    uuids = _import(
        folder, integration_id, {"images": [{"objectUrl": object_url(name, k)} for k in keys]}
    )
    listed = list(folder.list_items(page_size=2))
    assert [(i.name, i.url) for i in listed] == [(k, object_url(name, k)) for k in keys]
    folder.delete_storage_items([uuids[k] for k in keys[::2]])
    assert [i.name for i in folder.list_items(page_size=2)] == keys[1::2]


def test_update_renames_an_item_replacing_its_metadata_and_its_rows_follow(encord, imported):
    _, folder, uuids, dataset = imported
    item = encord.get_storage_item(uuids["a.png"])
    item.update(name="moved/a.png", client_metadata={"camera": "b"})
    item.update(client_metadata={"lens": 2})  # replaces, as upsert_metadata does
    fresh = encord.get_storage_item(uuids["a.png"])
    assert (fresh.name, fresh.client_metadata) == ("moved/a.png", {"lens": 2})
    (row,) = dataset.list_data_rows(title_eq="moved/a.png")
    assert row.backing_item_uuid == uuids["a.png"]
    with Bundle() as bundle:  # the SDK's bulk path (storage/items/patch-bulk)
        encord.get_storage_item(uuids["b.png"]).update(name="moved/b.png", bundle=bundle)
    assert sorted(i.name for i in folder.list_items()) == ["moved/a.png", "moved/b.png"]
    with pytest.raises(InvalidArgumentsError, match="name"):
        fresh.update(name=" ")
    assert encord.get_storage_item(uuids["a.png"]).name == "moved/a.png"
