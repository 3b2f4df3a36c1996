"""Ed25519 key pairs for the sandbox's users, in the formats the SDK and sshd use.

The SDK reads an OpenSSH private key file (`create_with_ssh_private_key`); the sandbox
learns its users from an OpenSSH `authorized_keys` file. Keys are made at run time so that
no private key is ever committed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_ED25519 = "ssh-ed25519"


@dataclass(frozen=True)
class KeyPair:
    private_key_path: Path
    public_key_hex: str  # the `keyid` the SDK puts in its signatures
    authorized_keys_line: str  # "ssh-ed25519 AAAA... <comment>"

    @property
    def name(self) -> str:
        """The user this key stands for (the comment of its authorized_keys line)."""
        return self.authorized_keys_line.split(" ", 2)[2]

    def write_authorized_keys(self, path: str | os.PathLike) -> Path:
        return write_authorized_keys(path, [self])


@dataclass(frozen=True)
class User:
    """An authorized key; the comment (e.g. an e-mail address) names the user."""

    public_key: Ed25519PublicKey
    public_key_hex: str
    name: str


def generate_key_pair(directory: str | os.PathLike, name: str = "user@sandbox.local") -> KeyPair:
    """Write `<directory>/<name>.ed25519` (mode 0600, OpenSSH format) and describe the pair."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    path = directory / f"{name}.ed25519"
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
    public_key = private_key.public_key()
    openssh = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return KeyPair(
        private_key_path=path,
        public_key_hex=_raw_hex(public_key),
        authorized_keys_line=f"{openssh} {name}",
    )


def write_authorized_keys(path: str | os.PathLike, key_pairs: Iterable[KeyPair]) -> Path:
    path = Path(path)
    path.write_text("".join(f"{pair.authorized_keys_line}\n" for pair in key_pairs))
    return path


def load_authorized_keys(path: str | os.PathLike) -> dict[str, User]:
    """Users by public-key hex. Blank lines, comments and non-Ed25519 keys are skipped.

    A line may start with sshd options (`from="..." ssh-ed25519 AAAA...`); only the key type,
    the key and the comment matter here.
    """
    users: dict[str, User] = {}
    for line in Path(path).read_text().splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#") or _ED25519 not in fields:
            continue
        at = fields.index(_ED25519)
        if at + 1 >= len(fields):
            continue
        public_key = serialization.load_ssh_public_key(f"{_ED25519} {fields[at + 1]}".encode())
        assert isinstance(public_key, Ed25519PublicKey)
        key_hex = _raw_hex(public_key)
        comment = " ".join(fields[at + 2 :]) or f"user-{key_hex[:8]}@sandbox.local"
        users[key_hex] = User(public_key=public_key, public_key_hex=key_hex, name=comment)
    return users


def _raw_hex(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
