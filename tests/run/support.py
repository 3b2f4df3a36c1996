"""What the `ingest run` tests share besides fixtures: the stack's names and small helpers.

A module of its own, not conftest.py: pytest imports conftest.py under another module name
than a test's `import`, which would give each side its own random EXTERNAL_ID.
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from encord import EncordUserClient

from demo.samples import SampleObject, png
from sandbox import KeyPair, Sandbox
from standins.local_aws import LocalAws

ROLE_ARN = "arn:aws:iam::123456789012:role/encord-access"
INTEGRATION = "S3 imports"
# Made up per test run, so a leak is recognisable wherever it shows up.
EXTERNAL_ID = f"external-id-{uuid.uuid4().hex}"
UPLOAD_JOBS = "/v2/public/storage/folders/*/data-upload-jobs"
# sample_corpus() as `ingest` imports it: one entry per file, one per DICOM series;
# misc/archive.zip is unsupported and the sidecar is metadata, not an entry.
CORPUS_TITLES = sorted(
    [
        "audio/call-001.wav",
        "dicom/study-1/series-1/",
        "docs/notes/readme.txt",
        "docs/reports/report.pdf",
        "groups/ward-a/frame-1.png",
        "groups/ward-a/frame-10.png",
        "groups/ward-a/frame-2.png",
        "images/cats/cat-1.png",
        "images/cats/cat-2.png",
        "images/cats/cat-3.png",
        "images/dogs/chien-été.png",
        "images/dogs/dog 1.jpg",
        "scans/brain.nii",
        "sequences/drive-1/0001.png",
        "sequences/drive-1/0002.png",
        "sequences/drive-1/0003.png",
        "videos/intersection.mp4",
    ]
)


@dataclass(frozen=True)
class Bucket:
    name: str
    aws: LocalAws
    outputs: Path  # the stack outputs JSON file

    def put(self, objects: list[SampleObject]) -> None:
        s3 = self.aws.client("s3")
        for obj in objects:
            s3.put_object(
                Bucket=self.name, Key=obj.key, Body=obj.body, ContentType=obj.content_type
            )

    def delete(self, key: str) -> None:
        self.aws.client("s3").delete_object(Bucket=self.name, Key=key)

    def url(self, key: str) -> str:
        return f"https://{self.name}.s3.us-east-1.amazonaws.com/{key}"


def run_arguments(command: str, bucket: Bucket, out: Path) -> list[str]:
    """`ingest COMMAND` on the test bucket, into `out`, with the tests' folder and Dataset."""
    return [
        command,
        "--outputs",
        str(bucket.outputs),
        "--out",
        str(out),
        "--folder",
        "imports",
        "--dataset",
        "Imported",
    ]


def new_images(count: int, folder: str = "new") -> list[SampleObject]:
    return [
        SampleObject(f"{folder}/img-{i:03d}.png", png(4, 4, shade=i), "image/png")
        for i in range(count)
    ]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


Ingest = Callable[..., Outcome]


def sdk_client(sandbox: Sandbox, key_pair: KeyPair) -> EncordUserClient:
    """The SDK as a user would use it, to look at what a run left in Encord."""
    return EncordUserClient.create_with_ssh_private_key(
        ssh_private_key_path=key_pair.private_key_path, domain=sandbox.url
    )


def dataset_rows(sandbox: Sandbox, key_pair: KeyPair, title: str = "Imported") -> list:
    """The Dataset's data rows, through the SDK."""
    client = sdk_client(sandbox, key_pair)
    [found] = client.get_datasets(title_eq=title)
    return client.get_dataset(found["dataset"].dataset_hash).list_data_rows()


def dataset_titles(sandbox: Sandbox, key_pair: KeyPair) -> list[str]:
    return sorted(row.title for row in dataset_rows(sandbox, key_pair))


def folder_item_names(sandbox: Sandbox, key_pair: KeyPair, name: str = "imports") -> list[str]:
    """The names of the Files folder's items, sorted: one per object imported, however many jobs."""
    [folder] = [f for f in sdk_client(sandbox, key_pair).list_storage_folders() if f.name == name]
    return sorted(item.name for item in folder.list_items())


def answered(sandbox: Sandbox, method: str, route: str, query_type: str | None = None) -> int:
    """How many calls to `route` (a glob) the sandbox has answered so far."""
    return sum(
        exchange.method == method
        and fnmatch.fnmatchcase(exchange.path, route)
        and exchange.query_type == query_type
        for exchange in sandbox.exchanges()
    )


def jobs_started(sandbox: Sandbox) -> list:
    """The upload jobs Encord accepted, as exchanges, oldest first."""
    return [
        exchange
        for exchange in sandbox.exchanges()
        if exchange.method == "POST"
        and exchange.status == 200
        and fnmatch.fnmatchcase(exchange.path, UPLOAD_JOBS)
    ]
