"""Bad keys and domains: one line, exit 2, and never a byte of the private key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from encord.http.constants import RequestsSettings

from ingest.cli.main import main
from ingest.encord import client as encord_client
from tests.run.support import Ingest, Outcome


def rsa_key_text() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def assert_one_line_error(outcome, *fragments: str) -> None:
    assert outcome.code == 2
    assert outcome.stdout == ""
    assert outcome.stderr.count("\n") == 1 and outcome.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in outcome.stderr


def assert_no_key_material(outcome, key_text: str) -> None:
    body = "".join(key_text.strip().splitlines()[1:-1])  # base64 without the armour lines
    for chunk in (body[i : i + 40] for i in range(0, len(body), 40)):
        assert chunk not in outcome.stdout + outcome.stderr
    assert "PRIVATE KEY" not in outcome.stdout + outcome.stderr


def test_an_rsa_key_file_is_refused_without_printing_it(ingest: Ingest, tmp_path: Path) -> None:
    key_text = rsa_key_text()
    key_file = tmp_path / "id_rsa"
    key_file.write_text(key_text)

    outcome = ingest("run", "--ssh-key-file", str(key_file))

    assert_one_line_error(outcome, str(key_file), "ssh-keygen -t ed25519")
    assert_no_key_material(outcome, key_text)


def test_schema_apply_refuses_an_rsa_key_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    key_text = rsa_key_text()
    key_file = tmp_path / "id_rsa"
    key_file.write_text(key_text)
    schema = tmp_path / "schema.yaml"
    schema.write_text("captured_at: datetime\n")

    code = main(["schema", "apply", str(schema), "--ssh-key-file", str(key_file)])

    captured = capsys.readouterr()
    outcome = Outcome(code, captured.out, captured.err)
    assert_one_line_error(outcome, str(key_file), "ssh-keygen -t ed25519")
    assert_no_key_material(outcome, key_text)


def test_an_rsa_key_in_the_environment_is_refused_without_printing_it(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_text = rsa_key_text()
    monkeypatch.delenv("ENCORD_SSH_KEY_FILE", raising=False)
    monkeypatch.setenv("ENCORD_SSH_KEY", key_text)

    outcome = ingest("verify")

    assert_one_line_error(outcome, "ENCORD_SSH_KEY", "ssh-keygen -t ed25519")
    assert_no_key_material(outcome, key_text)


def test_a_pkcs8_ed25519_key_is_refused(ingest: Ingest, tmp_path: Path) -> None:
    key_text = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    key_file = tmp_path / "key.pem"
    key_file.write_text(key_text)

    outcome = ingest("run", "--ssh-key-file", str(key_file))

    assert_one_line_error(outcome, str(key_file), "OpenSSH format")
    assert_no_key_material(outcome, key_text)


def test_a_missing_key_file_is_named(ingest: Ingest, tmp_path: Path) -> None:
    outcome = ingest("run", "--ssh-key-file", str(tmp_path / "nowhere"))
    assert_one_line_error(outcome, str(tmp_path / "nowhere"), "No such file")


def test_no_key_at_all_says_how_to_give_one(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCORD_SSH_KEY_FILE", raising=False)
    monkeypatch.delenv("ENCORD_SSH_KEY", raising=False)
    assert_one_line_error(ingest("run"), "--ssh-key-file", "ENCORD_SSH_KEY_FILE")


def test_a_domain_that_is_not_a_url_is_refused(ingest: Ingest) -> None:
    assert_one_line_error(
        ingest("run", "--encord-domain", "api.encord.com"), "'api.encord.com' is not a URL"
    )


def test_a_domain_where_nothing_answers_is_named(
    ingest: Ingest, ed25519_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encord_client, "REQUESTS_SETTINGS", RequestsSettings(backoff_factor=0.01))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        domain = f"http://127.0.0.1:{unused.getsockname()[1]}"

    outcome = ingest("run", "--encord-domain", domain, "--ssh-key-file", str(ed25519_key))

    assert_one_line_error(outcome, domain, "check --encord-domain")


def test_missing_folder_and_dataset_are_asked_for(ingest: Ingest, ed25519_key: Path) -> None:
    outcome = ingest("run", "--folder", "", "--dataset", "")
    assert_one_line_error(outcome, "--folder NAME and --dataset TITLE")
