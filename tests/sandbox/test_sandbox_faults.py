"""Injected faults reach the SDK as its own exceptions, or are absorbed by its retries."""

from __future__ import annotations

import time
from urllib.error import HTTPError

import pytest
from encord.exceptions import InvalidArgumentsError, RateLimitExceededError, UnknownException
from encord.orm.dataset import LongPollingStatus
from sandbox_support import object_url

from demo import samples

INTEGRATIONS = "/v2/public/cloud-integrations"


def test_a_503_without_retries_raises(sandbox, connect):
    sandbox.inject_faults({"route": INTEGRATIONS, "status": 503, "count": 1})
    client = connect(sandbox, max_retries=0)
    with pytest.raises(UnknownException):
        client.get_cloud_integrations()
    assert client.get_cloud_integrations() == []  # the fault was for one call only


@pytest.mark.parametrize("status", [500, 503])
def test_the_sdk_retries_through_a_transient_fault(sandbox, connect, integration_id, status):
    sandbox.inject_faults({"route": INTEGRATIONS, "status": status, "count": 1})
    client = connect(sandbox, max_retries=1)
    assert [i.id for i in client.get_cloud_integrations()] == [integration_id]
    failed = [e for e in sandbox.exchanges() if e.status == status]
    assert len(failed) == 1


def test_429_carries_retry_after_to_the_sdk(sandbox, connect):
    sandbox.inject_faults({"route": INTEGRATIONS, "status": 429, "retryAfter": 7})
    with pytest.raises(RateLimitExceededError) as raised:
        connect(sandbox, max_retries=0).get_cloud_integrations()
    assert raised.value.retry_after == 7


def test_a_v1_fault_reaches_the_sdk(sandbox, connect):
    client = connect(sandbox, max_retries=0)
    dataset = client.get_dataset(
        client.create_dataset("d", None, create_backing_folder=False).dataset_hash
    )
    sandbox.inject_faults({"route": "/public", "queryType": "datasetlinkitems", "status": 500})
    with pytest.raises(UnknownException):
        dataset.link_items([])
    sandbox.clear_faults()
    assert dataset.link_items([]) == []


def test_a_fraction_of_calls_fails(sandbox, connect):
    sandbox.inject_faults({"route": INTEGRATIONS, "status": 500, "fraction": 0.5})
    client = connect(sandbox, max_retries=0)
    outcomes = []
    for _ in range(30):
        try:
            client.get_cloud_integrations()
            outcomes.append("ok")
        except UnknownException:
            outcomes.append("failed")
    assert 0 < outcomes.count("failed") < 30  # all-or-nothing has odds of 2 in a billion


def test_a_slow_route_answers_late(sandbox, connect):
    sandbox.inject_faults({"route": INTEGRATIONS, "delaySeconds": 0.5, "count": 1})
    started = time.monotonic()
    connect(sandbox, max_retries=0).get_cloud_integrations()
    assert time.monotonic() - started >= 0.5


def test_route_globs_match_paths_with_ids(sandbox, encord):
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults(
        {"route": "/v2/public/storage/folders/*/items", "status": 503, "count": 1}
    )
    with pytest.raises(UnknownException):
        list(folder.list_items())


def test_an_invalid_rule_is_refused(sandbox):
    with pytest.raises(HTTPError) as raised:
        sandbox.inject_faults({"route": INTEGRATIONS, "status": 418})
    assert raised.value.code == 400


def test_a_job_can_be_made_to_end_in_error(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults({"job": {"outcome": "ERROR"}})
    job = folder.add_private_data_to_folder_start(
        integration_id, {"images": [{"objectUrl": object_url(name, "a.png")}]}
    )
    result = folder.add_private_data_to_folder_get_result(job)
    assert result.status == LongPollingStatus.ERROR
    assert result.errors and result.items_with_names == []
    assert list(folder.list_items()) == []


def test_a_job_can_be_kept_pending_for_several_polls(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults({"job": {"pendingPolls": 3}})
    job = folder.add_private_data_to_folder_start(
        integration_id, {"images": [{"objectUrl": object_url(name, "a.png")}]}
    )
    statuses = [
        folder.add_private_data_to_folder_get_result(job, timeout_seconds=1).status
        for _ in range(4)
    ]
    assert statuses == [LongPollingStatus.PENDING] * 3 + [LongPollingStatus.DONE]


def test_the_job_fault_applies_to_the_next_job_only(sandbox, encord, integration_id, bucket):
    name = bucket({"a.png": samples.png()})
    folder = encord.create_storage_folder("f")
    sandbox.inject_faults({"job": {"outcome": "ERROR"}})
    spec = {"images": [{"objectUrl": object_url(name, "a.png")}], "skip_duplicate_urls": True}
    first = folder.add_private_data_to_folder_start(integration_id, spec)
    second = folder.add_private_data_to_folder_start(integration_id, spec)
    assert folder.add_private_data_to_folder_get_result(first).status == LongPollingStatus.ERROR
    assert folder.add_private_data_to_folder_get_result(second).status == LongPollingStatus.DONE


def test_a_malformed_spec_is_refused_at_start(encord, integration_id):
    folder = encord.create_storage_folder("f")
    with pytest.raises(InvalidArgumentsError, match="image_sequences"):
        folder.add_private_data_to_folder_start(integration_id, {"image_sequences": []})
