"""Verify the SDK's two Ed25519 request-signing schemes against the authorized keys.

v2 (`/v2/public/...`): an HTTP-message-signatures draft. The client signs four lines
(`@method`, `@request-target` exactly as sent, `content-digest`, `@signature-params`) and
sends `Content-Digest`, `Signature-Input` and `Signature` (encord/http/v2/request_signer.py).

v1 (`/public`, `/public/user`): `Authorization: <public key hex>:<signature hex>`, where the
signature covers the SHA-256 digest of the JSON body (encord/configs.py, SshConfig).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidSignature

from sandbox.keys import User

_LABEL = "encord-sig"
_COVERED = ("@method", "@request-target", "content-digest")
# Encord's real window is unknown; five minutes is the usual choice for signed requests.
MAX_CLOCK_SKEW_SECONDS = 300


class AuthenticationFailed(Exception):
    """The request is unsigned, tampered with, stale, or signed by an unknown key."""


class Authenticator:
    def __init__(self, users: Mapping[str, User], clock: Callable[[], float] = time.time):
        self._users = dict(users)
        self._clock = clock

    def verify_v2(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> User:
        signature_input = headers.get("Signature-Input") or ""
        signature_header = headers.get("Signature") or ""
        digest_header = headers.get("Content-Digest") or ""
        if not (signature_input and signature_header and digest_header):
            raise AuthenticationFailed("The request is not signed.")
        expected_digest = f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"
        if digest_header != expected_digest:
            raise AuthenticationFailed("Content-Digest does not match the request body.")
        params = _strip_label(signature_input)
        covered, attributes = _parse_signature_params(params)
        if covered != _COVERED or attributes.get("alg") != "ed25519":
            raise AuthenticationFailed("Unsupported signature parameters.")
        try:
            created = int(attributes["created"])
        except (KeyError, ValueError) as error:
            raise AuthenticationFailed("The signature has no valid `created` time.") from error
        if abs(self._clock() - created) > MAX_CLOCK_SKEW_SECONDS:
            raise AuthenticationFailed("The signature is too old or from the future.")
        user = self._user(attributes.get("keyid", ""))
        lines = {
            "@method": method.upper(),
            "@request-target": target,
            "content-digest": digest_header,
            "@signature-params": params,
        }
        base = "\n".join(f'"{name}": {value}' for name, value in lines.items())
        signature = _strip_label(signature_header)
        if not (signature.startswith(":") and signature.endswith(":")):
            raise AuthenticationFailed("Malformed Signature header.")
        try:
            raw_signature = base64.b64decode(signature[1:-1], validate=True)
        except binascii.Error as error:
            raise AuthenticationFailed("Malformed Signature header.") from error
        _verify(user, raw_signature, base.encode())
        return user

    def verify_v1(self, headers: Mapping[str, str], body: bytes) -> User:
        authorization = headers.get("Authorization") or ""
        key_hex, _, signature_hex = authorization.partition(":")
        if not signature_hex:
            raise AuthenticationFailed("The request is not signed.")
        user = self._user(key_hex)
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError as error:
            raise AuthenticationFailed("Malformed Authorization header.") from error
        _verify(user, signature, hashlib.sha256(body).digest())
        return user

    def _user(self, key_hex: str) -> User:
        user = self._users.get(key_hex.lower())
        if user is None:
            raise AuthenticationFailed("The public key is not authorized for this organisation.")
        return user


def _strip_label(value: str) -> str:
    prefix = f"{_LABEL}="
    if not value.startswith(prefix):
        raise AuthenticationFailed(f"Expected a `{_LABEL}` signature.")
    return value[len(prefix) :]


_PARAMS = re.compile(r'^\(([^)]*)\)((?:;[a-z]+=(?:"[^"]*"|\d+))*)$')


def _parse_signature_params(params: str) -> tuple[tuple[str, ...], dict[str, str]]:
    match = _PARAMS.match(params)
    if not match:
        raise AuthenticationFailed("Malformed Signature-Input header.")
    covered = tuple(item.strip('"') for item in match.group(1).split())
    attributes = {}
    for pair in filter(None, match.group(2).split(";")):
        name, _, value = pair.partition("=")
        attributes[name] = value.strip('"')
    return covered, attributes


def _verify(user: User, signature: bytes, message: bytes) -> None:
    try:
        user.public_key.verify(signature, message)
    except InvalidSignature as error:
        raise AuthenticationFailed("The request signature is invalid.") from error
