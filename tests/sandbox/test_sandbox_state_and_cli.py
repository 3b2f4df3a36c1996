"""State survives a restart with --state, unfinished jobs resume, and the CLI serves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from encord.orm.dataset import LongPollingStatus
from sandbox_support import EXTERNAL_ID, ROLE_ARN, object_url

from demo import samples
from sandbox.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_a_restart_with_state_loses_nothing(start_sandbox, connect, bucket, tmp_path):
    state = tmp_path / "sandbox.sqlite"
    name = bucket({"a.png": samples.png()})
    first = start_sandbox(state_path=state, integrations=[("bucket", ROLE_ARN, EXTERNAL_ID)])
    client = connect(first, max_retries=0)
    (integration,) = client.get_cloud_integrations()
    folder = client.create_storage_folder("kept")
    job = folder.add_private_data_to_folder_start(
        integration.id, {"images": [{"objectUrl": object_url(name, "a.png")}]}
    )
    assert folder.add_private_data_to_folder_get_result(job).status == LongPollingStatus.DONE
    dataset_hash = client.create_dataset("kept", None, create_backing_folder=False).dataset_hash
    client.get_dataset(dataset_hash).link_items([item.uuid for item in folder.list_items()])

    second = start_sandbox(state_path=state, integrations=[("bucket", ROLE_ARN, EXTERNAL_ID)])
    again = connect(second, max_retries=0)
    assert [i.id for i in again.get_cloud_integrations()] == [
        integration.id
    ]  # seeding is idempotent
    (kept,) = again.find_storage_folders(search="kept")
    assert [item.name for item in kept.list_items()] == ["a.png"]
    assert kept.add_private_data_to_folder_get_result(job).status == LongPollingStatus.DONE
    assert [row.title for row in again.get_dataset(dataset_hash).list_data_rows()] == ["a.png"]


def test_an_unfinished_job_resumes_after_a_restart(start_sandbox, connect, bucket, tmp_path):
    state = tmp_path / "sandbox.sqlite"
    keys = [f"{i}.png" for i in range(6)]
    name = bucket({key: samples.png() for key in keys})
    first = start_sandbox(state_path=state)
    integration_id = first.add_integration("bucket", ROLE_ARN, EXTERNAL_ID)
    folder = connect(first, max_retries=0).create_storage_folder("f")
    first.inject_faults({"job": {"unitDelaySeconds": 0.3}})
    spec = {"images": [{"objectUrl": object_url(name, key)} for key in keys]}
    job = folder.add_private_data_to_folder_start(integration_id, spec)
    first.close()  # mid-job: the units are still waiting

    second = start_sandbox(state_path=state)
    (resumed,) = connect(second, max_retries=0).find_storage_folders(search="f")
    result = resumed.add_private_data_to_folder_get_result(job)
    assert (result.status, result.units_done_count) == (LongPollingStatus.DONE, 6)
    assert sorted(item.name for item in resumed.list_items()) == keys


def test_the_cli_prints_its_address_and_serves(aws, authorized_keys, connect):
    command = [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--port",
        "0",
        "--aws-endpoint-url",
        aws.endpoint_url,
        "--aws-access-key-id",
        "testing",
        "--aws-secret-access-key",
        "testing",
        "--authorized-keys",
        str(authorized_keys),
        "--integration",
        f"title=from-cli,role-arn={ROLE_ARN},external-id={EXTERNAL_ID}",
        "--report-skipped-duplicates",
        "--max-job-entries",
        "5",
        "--linked-item-deletion",
        "cascade",
        "--org-admin",
        "boss@example.com",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"Encord sandbox listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line

        class Running:
            url = match[1]

        assert [i.title for i in connect(Running, max_retries=0).get_cloud_integrations()] == [
            "from-cli"
        ]
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(f"{Running.url}/sandbox/readings", timeout=10) as response:
            readings = json.loads(response.read())
        assert readings == {
            "reportSkippedDuplicates": True,
            "maxJobEntries": 5,
            "maxRequestBytes": 8 * 1024 * 1024,
            "dedupeConcurrentJobs": False,
            "linkedItemDeletion": "cascade",
            "orgAdmins": ["boss@example.com"],
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_cli_refuses_an_integration_sts_would_refuse(authorized_keys, capsys):
    arguments = ["serve", "--authorized-keys", str(authorized_keys), "--integration"]
    assert main([*arguments, "title=x,role-arn=not-an-arn,external-id=abc"]) == 2
    assert "not an IAM role ARN" in capsys.readouterr().err
