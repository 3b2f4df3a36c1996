"""Fixtures for `ingest run` tests: a bucket of every data type in the local AWS, the stack
outputs file pointing at it, and a helper that runs the CLI in-process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.local_aws import REGION, LocalAws
from demo.samples import SampleObject, png, sample_corpus
from ingest import encord_client
from ingest.cli import main
from sandbox.keys import generate_key_pair

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


@pytest.fixture
def bucket(aws_env: LocalAws, tmp_path: Path) -> Bucket:
    """A bucket holding the demo corpus, and the stack outputs that describe it."""
    name = f"run-{uuid.uuid4().hex[:12]}"
    aws_env.client("s3").create_bucket(Bucket=name)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "bucketName": name,
                "region": REGION,
                "objectUrlPrefix": f"https://{name}.s3.{REGION}.amazonaws.com/",
                "prefixes": [],
                "roleArn": ROLE_ARN,
                "integrationTitle": INTEGRATION,
                "externalId": EXTERNAL_ID,
            }
        )
    )
    created = Bucket(name, aws_env, outputs)
    created.put(list(sample_corpus()))
    return created


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


@pytest.fixture
def ed25519_key(tmp_path: Path) -> Path:
    """A valid Encord key file that no server knows."""
    return generate_key_pair(tmp_path / "keys").private_key_path


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own backoff shortened so that fault tests stay fast; the policy is unchanged."""
    monkeypatch.setattr(encord_client, "RETRY_DELAYS_SECONDS", (0.05, 0.1, 0.2, 0.4, 0.8, 1.6))


@pytest.fixture
def ingest(
    bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture, fast_retries: None
) -> Ingest:
    """`python -m ingest COMMAND --outputs <bucket's> --out <tmp>/out ...`, in-process."""

    def run(command: str, *args: str) -> Outcome:
        capsys.readouterr()
        code = main(
            [
                command,
                "--outputs",
                str(bucket.outputs),
                "--out",
                str(tmp_path / "out"),
                "--folder",
                "imports",
                "--dataset",
                "Imported",
                *args,
            ]
        )
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
