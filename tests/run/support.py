"""What the `ingest run` tests share besides fixtures: the stack's names and small helpers.

A module of its own, not conftest.py: pytest imports conftest.py under another module name
than a test's `import`, which would give each side its own random EXTERNAL_ID.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demo.local_aws import LocalAws
from demo.samples import SampleObject, png

ROLE_ARN = "arn:aws:iam::123456789012:role/encord-access"
INTEGRATION = "S3 imports"
# Made up per test run, so a leak is recognisable wherever it shows up.
EXTERNAL_ID = f"external-id-{uuid.uuid4().hex}"


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
