"""Fixtures for `ingest watch`: those of the `ingest run` tests (a bucket of the demo corpus,
its stack outputs, the Encord sandbox), and the bucket's S3 events delivered to SQS."""

from __future__ import annotations

import pytest

from tests.run.conftest import bucket, encord_ingest, fast_retries, ingest, key_pair, sandbox  # noqa: F401
from tests.run.support import Bucket
from tests.watch.support import EventQueues, connect_events


@pytest.fixture
def events(bucket: Bucket) -> EventQueues:  # noqa: F811
    return connect_events(bucket)
