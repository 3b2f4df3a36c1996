"""A local, wire-compatible Encord server for the unmodified `encord` SDK (see README.md)."""

from sandbox.keys import KeyPair, generate_key_pair, load_authorized_keys, write_authorized_keys
from sandbox.readings import LinkedItemDeletion, Readings
from sandbox.server import (
    DEFAULT_LONG_POLL_CAP_SECONDS,
    IntegrationSeed,
    Sandbox,
    create_sandbox,
    running_sandbox,
)

__all__ = [
    "DEFAULT_LONG_POLL_CAP_SECONDS",
    "IntegrationSeed",
    "KeyPair",
    "LinkedItemDeletion",
    "Readings",
    "Sandbox",
    "create_sandbox",
    "generate_key_pair",
    "load_authorized_keys",
    "running_sandbox",
    "write_authorized_keys",
]
