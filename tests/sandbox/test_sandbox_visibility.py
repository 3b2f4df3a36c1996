"""Per-user visibility: what one user creates is invisible to another until it is shared."""

from __future__ import annotations

import pytest
from encord.exceptions import AuthorisationError, ResourceNotFoundError
from encord.orm.dataset import LongPollingStatus
from sandbox_support import EXTERNAL_ID, ROLE_ARN, object_url

from demo import samples


@pytest.fixture
def colleague(sandbox, connect, other_key):
    return connect(sandbox, max_retries=0, key=other_key)


def test_an_integration_is_invisible_to_another_user_until_shared(
    sandbox, encord, colleague, other_key, integration_id, bucket
):
    assert [i.id for i in encord.get_cloud_integrations()] == [integration_id]
    assert colleague.get_cloud_integrations() == []
    folder = colleague.create_storage_folder("theirs")
    name = bucket({"a.png": samples.png()})
    spec = {"images": [{"objectUrl": object_url(name, "a.png")}]}
    with pytest.raises(ResourceNotFoundError):
        folder.add_private_data_to_folder_start(integration_id, spec)
    sandbox.share("integration", integration_id, other_key)
    assert [i.id for i in colleague.get_cloud_integrations()] == [integration_id]
    job = folder.add_private_data_to_folder_start(integration_id, spec)
    assert folder.add_private_data_to_folder_get_result(job).status == LongPollingStatus.DONE


def test_an_integration_can_be_made_for_another_owner(sandbox, encord, colleague, other_key):
    theirs = sandbox.add_integration("theirs", ROLE_ARN, EXTERNAL_ID, owner=other_key.name)
    assert [i.id for i in colleague.get_cloud_integrations()] == [theirs]
    assert encord.get_cloud_integrations() == []


def test_folders_and_their_items_are_invisible_until_shared(
    sandbox, encord, colleague, other_key, integration_id, bucket
):
    folder = encord.create_storage_folder("mine")
    child = encord.create_storage_folder("child", parent_folder=folder.uuid)
    name = bucket({"a.png": samples.png()})
    job = folder.add_private_data_to_folder_start(
        integration_id, {"images": [{"objectUrl": object_url(name, "a.png")}]}
    )
    (item,) = folder.add_private_data_to_folder_get_result(job).items_with_names
    assert list(colleague.find_storage_folders()) == []
    with pytest.raises(AuthorisationError):
        colleague.get_storage_folder(folder.uuid)
    with pytest.raises(AuthorisationError):
        colleague.get_storage_item(item.item_uuid)
    sandbox.share("folder", str(folder.uuid), other_key)
    assert {f.name for f in colleague.find_storage_folders()} == {"mine", "child"}
    assert colleague.get_storage_folder(child.uuid).name == "child"
    assert colleague.get_storage_item(item.item_uuid).name == "a.png"
    assert colleague.get_storage_folder(folder.uuid)._orm_folder.user_role.value == "user"


def test_datasets_are_invisible_until_shared(sandbox, encord, colleague, other_key):
    dataset_hash = encord.create_dataset("mine", None, create_backing_folder=False).dataset_hash
    assert colleague.get_datasets() == []
    with pytest.raises(ResourceNotFoundError):
        colleague.get_dataset(dataset_hash)
    sandbox.share("dataset", dataset_hash, other_key)
    assert [d["dataset"].title for d in colleague.get_datasets()] == ["mine"]
    assert colleague.get_dataset(dataset_hash).title == "mine"


def test_include_org_access_lists_everything_only_for_org_admins(
    start_sandbox, connect, user_key, other_key
):
    sandbox = start_sandbox(org_admins=(other_key.name,))
    owner = connect(sandbox, max_retries=0)
    admin = connect(sandbox, max_retries=0, key=other_key)
    integration_id = sandbox.add_integration("b", ROLE_ARN, EXTERNAL_ID)
    owner.create_storage_folder("mine")
    owner.create_dataset("mine", None, create_backing_folder=False)
    assert admin.get_cloud_integrations() == []
    assert [i.id for i in admin.get_cloud_integrations(include_org_access=True)] == [integration_id]
    assert list(admin.find_storage_folders()) == []
    assert [f.name for f in admin.find_storage_folders(org_access=True)] == ["mine"]
    assert [d["dataset"].title for d in admin.get_datasets(include_org_access=True)] == ["mine"]
    # Not an admin: include_org_access reveals nothing more.
    theirs = sandbox.add_integration("theirs", ROLE_ARN, EXTERNAL_ID, owner=other_key.name)
    assert theirs not in [i.id for i in owner.get_cloud_integrations(include_org_access=True)]
    assert sandbox.readings().org_admins == (other_key.name,)
