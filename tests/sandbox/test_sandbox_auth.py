"""Requests must be signed by an authorized key, and signatures must cover what was sent."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from encord import configs as sdk_configs
from encord.configs import SshConfig
from encord.exceptions import AuthenticationError
from encord.http.v2.request_signer import sign_request

from sandbox import generate_key_pair


def _signer(key_pair):
    private_key = load_ssh_private_key(key_pair.private_key_path.read_bytes(), None)
    return SshConfig(private_key, domain="http://unused")


def _signed_v2(sandbox, key_pair, method, path, body=None):
    config = _signer(key_pair)
    request = requests.Request(method, sandbox.url + path, json=body).prepare()
    return sign_request(request, config.public_key_hex, config.private_key)


def _send(request):
    with requests.Session() as session:
        return session.send(request, timeout=10)


def test_a_correctly_signed_v2_request_is_served(sandbox, user_key):
    response = _send(_signed_v2(sandbox, user_key, "GET", "/v2/public/cloud-integrations"))
    assert response.status_code == 200, response.text


def test_an_unsigned_v2_request_is_refused(sandbox):
    response = requests.get(sandbox.url + "/v2/public/cloud-integrations", timeout=10)
    assert response.status_code == 401
    assert "not signed" in response.json()["message"]


def test_an_unknown_key_makes_the_sdk_raise_authentication_error(sandbox, connect, tmp_path):
    stranger = generate_key_pair(tmp_path, "stranger@example.com")
    client = connect(sandbox, max_retries=0, key=stranger)
    with pytest.raises(AuthenticationError):
        client.get_cloud_integrations()  # v2
    with pytest.raises(AuthenticationError):
        client.get_dataset("00000000-0000-0000-0000-000000000000")  # v1


def test_a_tampered_v2_body_is_refused(sandbox, user_key):
    request = _signed_v2(sandbox, user_key, "POST", "/v2/public/storage/folders", {"name": "a"})
    request.body = json.dumps({"name": "b"}).encode()
    request.headers["Content-Length"] = str(len(request.body))
    response = _send(request)
    assert response.status_code == 401
    assert "Content-Digest" in response.json()["message"]


def test_a_tampered_v2_body_with_a_matching_digest_is_refused(sandbox, user_key):
    """Recomputing the digest is not enough: the signature covers the digest."""
    request = _signed_v2(sandbox, user_key, "POST", "/v2/public/storage/folders", {"name": "a"})
    forged = requests.Request("POST", request.url, json={"name": "b"}).prepare()
    other = _signed_v2(sandbox, user_key, "POST", "/v2/public/storage/folders", {"name": "b"})
    forged.headers["Content-Digest"] = other.headers["Content-Digest"]
    forged.headers["Signature-Input"] = request.headers["Signature-Input"]
    forged.headers["Signature"] = request.headers["Signature"]
    response = _send(forged)
    assert response.status_code == 401
    assert "signature is invalid" in response.json()["message"]


@pytest.mark.parametrize(
    "changed_target",
    [
        "/v2/public/cloud-integrations?includeOrgAccess=True",
        "/v2/public/storage/folders",
    ],
    ids=["query", "path"],
)
def test_a_tampered_v2_target_is_refused(sandbox, user_key, changed_target):
    request = _signed_v2(sandbox, user_key, "GET", "/v2/public/cloud-integrations")
    request.url = sandbox.url + changed_target
    assert _send(request).status_code == 401


def test_a_v2_signature_from_long_ago_is_refused(sandbox, user_key, monkeypatch):
    an_hour_ago = time.time() - 3600

    class Clock:
        @staticmethod
        def now():
            return datetime.fromtimestamp(an_hour_ago)

    monkeypatch.setattr("encord.http.v2.request_signer.datetime", Clock)
    response = _send(_signed_v2(sandbox, user_key, "GET", "/v2/public/cloud-integrations"))
    assert response.status_code == 401
    assert "too old" in response.json()["message"]


def _v1_request(sandbox, key_pair, payload: str, signed_payload: str | None = None):
    headers = _signer(key_pair).define_headers("some-dataset", "dataset", signed_payload or payload)
    return requests.post(sandbox.url + "/public", data=payload, headers=headers, timeout=10)


def test_a_v1_request_with_a_tampered_body_is_refused(sandbox, user_key):
    query = {
        "query_type": "dataset",
        "query_method": "GET",
        "values": {"uid": None, "payload": None},
    }
    honest = _v1_request(sandbox, user_key, json.dumps(query)).json()
    assert honest["response"] == [
        "RESOURCE_NOT_FOUND_ERROR"
    ]  # authenticated; the dataset is unknown
    tampered = {**query, "query_method": "POST"}
    answer = _v1_request(
        sandbox, user_key, json.dumps(tampered), signed_payload=json.dumps(query)
    ).json()
    assert answer["response"] == ["AUTHENTICATION_ERROR"]


def test_a_v1_request_without_authorization_is_refused(sandbox):
    body = json.dumps({"query_type": "dataset", "query_method": "GET", "values": {}})
    answer = requests.post(sandbox.url + "/public", data=body, timeout=10).json()
    assert answer["response"] == ["AUTHENTICATION_ERROR"]


def test_tampering_after_signing_makes_the_sdk_raise_authentication_error(
    sandbox, encord, monkeypatch
):
    """A request altered in flight (here: after the SDK signed it) is refused, through the SDK."""
    real_sign = sdk_configs.sign_request

    def sign_then_tamper(request, key_id, private_key):
        signed = real_sign(request, key_id, private_key)
        signed.body = json.dumps({"name": "tampered"}).encode()
        signed.headers["Content-Length"] = str(len(signed.body))
        return signed

    monkeypatch.setattr(sdk_configs, "sign_request", sign_then_tamper)
    with pytest.raises(AuthenticationError):
        encord.create_storage_folder("original")


def test_a_v1_signature_over_other_bytes_makes_the_sdk_raise_authentication_error(
    sandbox, encord, monkeypatch
):
    monkeypatch.setattr(
        SshConfig, "_get_v1_signature", staticmethod(lambda data, key: key.sign(b"other bytes"))
    )
    with pytest.raises(AuthenticationError):
        encord.get_dataset("00000000-0000-0000-0000-000000000000")
