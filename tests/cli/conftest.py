"""The `ingest run` fixtures (a bucket in the local AWS, the Encord sandbox, keys), shared."""

from tests.run.conftest import (  # noqa: F401 (fixtures, found by name)
    bucket,
    ed25519_key,
    encord_ingest,
    fast_retries,
    ingest,
    key_pair,
    sandbox,
)
