"""The `ingest run` fixtures (bucket in moto, sandbox, CLI in-process and as a process)."""

from tests.run.conftest import (  # noqa: F401
    bucket,
    ed25519_key,
    encord_ingest,
    fast_retries,
    ingest,
    key_pair,
    sandbox,
)
from tests.run.test_end_to_end import cli  # noqa: F401
