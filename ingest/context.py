"""The inputs every bucket-reading command shares: stack outputs, settings and an S3 client.

`load_context(args)` turns the flags of `ingest.cli.options` into a `PlanContext`. `plan` and `run` both use these, so they read exactly the same inputs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from ingest.cli.options import settings_overrides
from ingest.outputs import StackOutputs, load_outputs
from ingest.settings import IngestSettings, load_settings


@dataclass(frozen=True)
class PlanContext:
    outputs: StackOutputs
    settings: IngestSettings
    s3: Any  # a boto3 S3 client

    @property
    def prefixes(self) -> list[str]:
        """The prefixes to scan: the settings' if set, else the stack's; [""] = whole bucket."""
        configured = self.settings.prefixes
        chosen = configured if configured is not None else self.outputs.prefixes
        return chosen or [""]


def load_context(args: argparse.Namespace) -> PlanContext:
    # Settings first: they are local and cheap to check, the outputs may need the Pulumi CLI.
    settings = load_settings(args.stack, args.config, settings_overrides(args))
    outputs = load_outputs(args.stack, args.outputs)
    if settings.integration is None and outputs.integration_title:
        settings = settings.model_copy(update={"integration": outputs.integration_title})
    return PlanContext(outputs=outputs, settings=settings, s3=s3_client(outputs, settings))


def s3_client(outputs: StackOutputs, settings: IngestSettings) -> Any:
    """Credentials and endpoint the boto3 way (profile, env, role; AWS_ENDPOINT_URL)."""
    config = Config(
        max_pool_connections=max(10, settings.scan_workers * 2),
        retries={"mode": "standard", "max_attempts": 8},
    )
    return boto3.session.Session().client("s3", region_name=outputs.region, config=config)
