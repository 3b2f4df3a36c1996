"""Folders, item listing and pagination, datasets and their rows, the metadata schema APIs."""

from __future__ import annotations

from urllib.error import HTTPError

import pytest
from encord.exceptions import (
    AuthorisationError,
    InvalidArgumentsError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from encord.metadata_schema import _ClientMetadataSchema
from encord.orm.dataset import DataLinkDuplicatesBehavior, DataType, LongPollingStatus
from encord.orm.storage import FoldersSortBy, StorageItemType
from sandbox_support import EXTERNAL_ID, ROLE_ARN, object_url

from demo import samples


def _upload(folder, integration_id, spec):
    result = folder.add_private_data_to_folder_get_result(
        folder.add_private_data_to_folder_start(integration_id, spec)
    )
    assert result.status == LongPollingStatus.DONE, result.unit_errors
    return result


def test_folders_are_created_found_listed_and_updated(encord):
    top = encord.create_storage_folder("Top Folder", "desc", client_metadata={"a": 1})
    child = encord.create_storage_folder("child of top", parent_folder=top.uuid)
    encord.create_storage_folder("unrelated")
    assert sorted(f.name for f in encord.list_storage_folders()) == ["Top Folder", "unrelated"]
    assert [f.uuid for f in encord.find_storage_folders(search="TOP")] == [child.uuid, top.uuid]
    fetched = encord.get_storage_folder(child.uuid)
    assert (fetched.parent_uuid, fetched.name) == (top.uuid, "child of top")
    assert [p.name for p in fetched._orm_folder.path_to_root] == ["Top Folder", "child of top"]
    top.update(name="Renamed", description="new", client_metadata={"b": 2})
    again = encord.get_storage_folder(top.uuid)
    assert (again.name, again.description, again.client_metadata) == ("Renamed", "new", {"b": 2})


def test_a_missing_folder_is_an_authorisation_error(encord):
    with pytest.raises(AuthorisationError):
        encord.get_storage_folder("00000000-0000-0000-0000-000000000000")


def test_folder_pages_are_followed_to_the_end(encord):
    names = [f"folder-{i:02d}" for i in range(7)]
    for name in reversed(names):
        encord.create_storage_folder(name)
    assert [f.name for f in encord.list_storage_folders(page_size=2)] == names
    assert [f.name for f in encord.find_storage_folders(page_size=3, desc=True)] == names[::-1]
    by_creation = encord.list_storage_folders(page_size=1, order=FoldersSortBy.CREATED_AT)
    assert [f.name for f in by_creation] == names[::-1]


@pytest.mark.parametrize("page_size", [1, 2, 5, 1000])
def test_item_pages_are_followed_to_the_end(encord, integration_id, bucket, page_size):
    keys = [f"img-{i}.png" for i in range(5)]
    name = bucket({key: samples.png() for key in keys})
    folder = encord.create_storage_folder("f")
    _upload(folder, integration_id, {"images": [{"objectUrl": object_url(name, k)} for k in keys]})
    assert [item.name for item in folder.list_items(page_size=page_size)] == keys


@pytest.mark.parametrize("page_size", [0, 1001])
def test_page_sizes_outside_1_to_1000_are_refused(encord, page_size):
    folder = encord.create_storage_folder("f")
    with pytest.raises(InvalidArgumentsError):
        list(folder.list_items(page_size=page_size))


def test_items_are_filtered_by_search_type_and_dataset_membership(encord, integration_id, bucket):
    name = bucket({"Cat.png": samples.png(), "dog.png": samples.png(), "clip.mp4": samples.mp4()})
    folder = encord.create_storage_folder("f")
    spec = {
        "images": [{"objectUrl": object_url(name, k)} for k in ("Cat.png", "dog.png")],
        "videos": [{"objectUrl": object_url(name, "clip.mp4")}],
    }
    _upload(folder, integration_id, spec)
    assert [i.name for i in folder.list_items(search="cat")] == ["Cat.png"]
    assert [i.name for i in folder.list_items(item_types=[StorageItemType.VIDEO])] == ["clip.mp4"]
    dog = next(iter(folder.list_items(search="dog")))
    dataset = encord.get_dataset(
        encord.create_dataset("d", None, create_backing_folder=False).dataset_hash
    )
    dataset.link_items([dog.uuid])
    assert [i.name for i in folder.list_items(is_in_dataset=True)] == ["dog.png"]
    assert sorted(i.name for i in folder.list_items(is_in_dataset=False)) == ["Cat.png", "clip.mp4"]
    assert encord.get_storage_item(dog.uuid).name == "dog.png"
    assert [i.name for i in encord.get_storage_items([dog.uuid, dog.uuid])] == [
        "dog.png",
        "dog.png",
    ]


def test_link_items_duplicates_behaviours(encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    (item,) = _upload(
        folder, integration_id, {"images": [{"objectUrl": object_url(name, "a.png")}]}
    ).items_with_names
    dataset = encord.get_dataset(
        encord.create_dataset("d", None, create_backing_folder=False).dataset_hash
    )
    (row,) = dataset.link_items([item.item_uuid])
    assert (row.title, row.data_type, row.backing_item_uuid) == (
        "a.png",
        DataType.IMAGE,
        item.item_uuid,
    )
    assert dataset.link_items([item.item_uuid], DataLinkDuplicatesBehavior.SKIP) == []
    with pytest.raises(ResourceExistsError):
        dataset.link_items([item.item_uuid], DataLinkDuplicatesBehavior.FAIL)
    assert len(dataset.link_items([item.item_uuid], DataLinkDuplicatesBehavior.DUPLICATE)) == 1
    assert len(dataset.list_data_rows()) == 2
    with pytest.raises(ResourceNotFoundError):
        dataset.link_items(["00000000-0000-0000-0000-000000000000"])


def test_data_rows_are_filtered_and_carry_file_links(encord, integration_id, bucket):
    name = bucket(
        {
            "a.png": samples.png(7, 9),
            "b.mp4": samples.mp4(),
            **{f"g{i}.png": samples.png() for i in range(2)},
        }
    )
    folder = encord.create_storage_folder("f")
    spec = {
        "images": [{"objectUrl": object_url(name, "a.png"), "clientMetadata": {"k": 1}}],
        "videos": [{"objectUrl": object_url(name, "b.mp4")}],
        "image_groups": [
            {
                "title": "group",
                **{f"objectUrl_{i}": object_url(name, f"g{i}.png") for i in range(2)},
            }
        ],
    }
    items = _upload(folder, integration_id, spec).items_with_names
    created = encord.create_dataset("d", None, create_backing_folder=False)
    dataset = encord.get_dataset(created.dataset_hash)
    dataset.link_items([i.item_uuid for i in items])
    rows = {row.title: row for row in dataset.list_data_rows()}
    assert rows["a.png"].file_link == object_url(name, "a.png")
    assert (rows["a.png"].width, rows["a.png"].height, rows["a.png"].file_type) == (
        7,
        9,
        "image/png",
    )
    assert rows["group"].file_link == object_url(name, "g0.png")  # the first frame
    assert rows["group"].data_type == DataType.IMG_GROUP
    assert [r.title for r in dataset.list_data_rows(title_eq="b.mp4")] == ["b.mp4"]
    assert sorted(r.title for r in dataset.list_data_rows(title_like="%.%")) == ["a.png", "b.mp4"]
    assert [r.title for r in dataset.list_data_rows(data_types=[DataType.VIDEO])] == ["b.mp4"]
    assert [r.title for r in dataset.list_data_rows(data_hashes=[rows["group"].uid])] == ["group"]


def test_datasets_are_listed_with_title_filters(encord):
    for title in ("Houses", "Gardens", "houseboats"):
        encord.create_dataset(title, None, create_backing_folder=False)
    assert [d["dataset"].title for d in encord.get_datasets(title_eq="Houses")] == ["Houses"]
    assert sorted(d["dataset"].title for d in encord.get_datasets(title_like="house%")) == [
        "Houses",
        "houseboats",
    ]


def test_a_dataset_with_a_backing_folder_mirrors_it(encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    created = encord.create_dataset("mirrored", None, create_backing_folder=True)
    backing = encord.get_storage_folder(created.backing_folder_uuid)
    _upload(backing, integration_id, {"images": [{"objectUrl": object_url(name, "a.png")}]})
    rows = encord.get_dataset(created.dataset_hash).list_data_rows()
    assert [row.title for row in rows] == ["a.png"]


def test_an_unknown_dataset_is_not_found(encord):
    with pytest.raises(ResourceNotFoundError):
        encord.get_dataset("00000000-0000-0000-0000-000000000000")


def test_the_metadata_schema_is_replaced_on_save(encord):
    assert encord.metadata_schema().keys() == []
    first = encord.metadata_schema()
    first.add_scalar("a", data_type="number")
    first.save()
    second = encord.metadata_schema()
    second.delete_key("a")
    second.add_scalar("b", data_type="boolean")
    second.save()
    third = encord.metadata_schema()
    assert third.keys() == ["a", "b"] and third.is_key_deleted("a")
    # What is saved is the whole schema as sent: a key left out is gone.
    encord._api_client.post(
        "organisation/client-metadata-schema-v2",
        params=None,
        payload=_ClientMetadataSchema.model_validate({"b": {"ty": "boolean"}}),
        result_type=None,
    )
    assert encord.metadata_schema().keys() == ["b"]


@pytest.mark.filterwarnings("ignore:.*client_metadata_schema.*is deprecated:DeprecationWarning")
def test_the_legacy_metadata_schema_api(encord):
    assert encord.get_client_metadata_schema() is None
    encord.set_client_metadata_schema_from_dict({"a": "number", "b": "string"})
    assert encord.get_client_metadata_schema() == {"a": "number", "b": "string"}
    assert encord.metadata_schema().get_key_type("b") == "varchar"
    with pytest.raises(InvalidArgumentsError):
        encord.set_client_metadata_schema_from_dict({"c": "enum"})


def test_integrations_are_listed_with_filters(sandbox, encord):
    first = sandbox.add_integration("first", ROLE_ARN, EXTERNAL_ID)
    second = sandbox.add_integration("second", ROLE_ARN, EXTERNAL_ID)
    assert [i.id for i in encord.get_cloud_integrations()] == [first, second]
    assert [i.id for i in encord.get_cloud_integrations(filter_integration_titles=["second"])] == [
        second
    ]
    assert [i.id for i in encord.get_cloud_integrations(filter_integration_uuids=[first])] == [
        first
    ]


@pytest.mark.parametrize(
    ("role_arn", "external_id"),
    [("not-an-arn", EXTERNAL_ID), (ROLE_ARN, "x"), (ROLE_ARN, "has space")],
    ids=["bad-arn", "short-external-id", "space-in-external-id"],
)
def test_an_integration_sts_would_refuse_is_refused_when_created(sandbox, role_arn, external_id):
    with pytest.raises(HTTPError) as raised:
        sandbox.add_integration("bad", role_arn, external_id)
    assert raised.value.code == 400
