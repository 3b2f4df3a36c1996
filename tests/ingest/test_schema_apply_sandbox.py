"""`ingest schema apply` end to end: the real SDK against the local Encord sandbox."""

from __future__ import annotations

import pytest
from encord import EncordUserClient

from ingest.cli.main import main
from ingest.encord.client import EncordClient
from ingest.encord.schema_sync import apply
from ingest.errors import UserError
from ingest.plan.schema import load_schema
from sandbox import generate_key_pair, running_sandbox, write_authorized_keys
from standins.local_aws import LocalAws


@pytest.fixture
def encord_sandbox(aws: LocalAws, tmp_path):
    key = generate_key_pair(tmp_path / "keys", "schema@example.com")
    authorized = write_authorized_keys(tmp_path / "authorized_keys", [key])
    with running_sandbox(
        aws_endpoint_url=aws.endpoint_url,
        aws_credentials=("testing", "testing"),
        authorized_keys_path=authorized,
        long_poll_cap_seconds=1,
    ) as sandbox:
        client = EncordUserClient.create_with_ssh_private_key(
            ssh_private_key_path=str(key.private_key_path), domain=sandbox.url
        )
        yield sandbox, key.private_key_path, client


def test_apply_merges_into_the_organisation_schema(encord_sandbox, tmp_path, capsys) -> None:
    sandbox, key_path, client = encord_sandbox
    existing = client.metadata_schema()
    existing.add_scalar("team.owner", data_type="varchar")
    existing.add_enum("camera", values=["front"])
    existing.save()
    schema = tmp_path / "schema.yaml"
    schema.write_text("camera: {type: enum, values: [front, rear]}\ncaptured_at: datetime\n")
    argv = [
        "schema",
        "apply",
        str(schema),
        "--ssh-key-file",
        str(key_path),
        "--encord-domain",
        sandbox.url,
    ]

    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "added options ['rear'] to enum 'camera'",
        "added 'captured_at' (datetime)",
    ]
    stored = client.metadata_schema()
    assert sorted(stored.keys()) == ["camera", "captured_at", "team.owner"]
    assert stored.get_enum_options("camera") == ["front", "rear"]
    assert stored.get_key_type("team.owner") == "varchar"

    assert main(argv) == 0  # idempotent
    assert "already has every key" in capsys.readouterr().out

    schema.write_text("team.owner: number\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'team.owner' is varchar in Encord but number" in err and err.count("\n") == 1
    assert client.metadata_schema().get_key_type("team.owner") == "varchar"


DECLARED = """\
captured_at: datetime
camera: {type: enum, values: [front, rear, side]}
clip: {type: embedding, size: 4}
score: number
"""


def test_apply_keeps_existing_keys_and_merges_enum_options(encord_sandbox, tmp_path) -> None:
    sandbox, _, client = encord_sandbox
    existing = client.metadata_schema()
    existing.add_scalar("team.owner", data_type="varchar")
    existing.add_enum("camera", values=["front", "top"])
    existing.save()
    schema = tmp_path / "schema.yaml"
    schema.write_text(DECLARED)

    changes = apply(
        EncordClient(client, sandbox.url, "test key"), load_schema(schema), "schema.yaml"
    )

    assert changes == [
        "added options ['rear', 'side'] to enum 'camera'",
        "added 'captured_at' (datetime)",
        "added 'clip' (embedding)",
        "added 'score' (number)",
    ]
    stored = client.metadata_schema()
    assert sorted(stored.keys()) == ["camera", "captured_at", "clip", "score", "team.owner"]
    assert stored.get_enum_options("camera") == ["front", "rear", "side", "top"]
    assert stored.get_embedding_size("clip") == 4
    assert [stored.get_key_type(k) for k in ("captured_at", "score", "team.owner")] == [
        "datetime",
        "number",
        "varchar",
    ]


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        (
            lambda schema: schema.add_scalar("score", data_type="varchar"),
            "'score' is varchar in Encord but number",
        ),
        (
            lambda schema: schema.add_embedding("clip", size=8),
            "'clip' is an embedding of size 8 in Encord but 4",
        ),
    ],
)
def test_a_type_conflict_is_an_error_and_nothing_is_saved(
    encord_sandbox, tmp_path, existing, message
) -> None:
    sandbox, _, client = encord_sandbox
    stored = client.metadata_schema()
    existing(stored)
    stored.save()
    before = repr(client.metadata_schema())
    schema = tmp_path / "schema.yaml"
    schema.write_text(DECLARED)

    with pytest.raises(UserError, match=message):
        apply(EncordClient(client, sandbox.url, "test key"), load_schema(schema), "schema.yaml")

    assert repr(client.metadata_schema()) == before
