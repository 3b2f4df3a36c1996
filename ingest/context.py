"""The inputs every bucket-reading command shares: stack outputs, settings and an S3 client.

`load_context(args)` turns the flags of `ingest.cli.options` into a `PlanContext`. `plan` and `run` both use these, so they read exactly the same inputs. `check_context`
looks at everything that can be checked before a command writes anything: the output
directory, the globs, and that the bucket answers.
"""

from __future__ import annotations

import argparse
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

from ingest.cli.options import settings_overrides
from ingest.errors import UserError
from ingest.listing.s3_errors import s3_errors
from ingest.outputs import StackOutputs, load_outputs
from ingest.plan.globs import matcher
from ingest.settings import IngestSettings, inapplicable, load_settings

# The bucket check before any work: a couple of attempts, so that an unreachable endpoint
# fails in seconds (the listing itself retries more, for throttling).
_CHECK_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 2}
)


@dataclass(frozen=True)
class PlanContext:
    outputs: StackOutputs
    settings: IngestSettings
    s3: Any  # a botocore S3 client (see `s3_client`)
    # The botocore session `s3` was made in: another client made in it (`check_context`'s)
    # shares the S3 model it loaded. None: a new session's.
    session: Any = None
    warnings: tuple[str, ...] = ()  # settings given that the chosen sources ignore

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
    session, s3 = s3_client(outputs, settings)
    return PlanContext(
        outputs=outputs,
        settings=settings,
        s3=s3,
        session=session,
        warnings=tuple(inapplicable(settings)),
    )


def s3_client(outputs: StackOutputs, settings: IngestSettings) -> tuple[Any, Any]:
    """A botocore session and its S3 client, credentials and endpoint the boto3 way (profile,
    env, role; AWS_ENDPOINT_URL). botocore's own client is what boto3's would be for the calls
    made here, without importing boto3 and s3transfer on every command's start-up
    (`bench/README.md`)."""
    config = Config(
        max_pool_connections=max(10, settings.scan_workers * 2),
        retries={"mode": "standard", "max_attempts": 8},
    )
    # botocore resolves AWS_PROFILE when the session and client are made, not at the first call.
    with s3_errors("connecting to", f"S3 for s3://{outputs.bucket_name}"):
        session = botocore.session.Session()
        return session, session.create_client("s3", region_name=outputs.region, config=config)


def check_context(context: PlanContext) -> None:
    """Everything a bucket-reading command can check before it writes anything, here or in
    Encord: the output directory is writable, the globs compile, the bucket answers."""
    settings = context.settings
    writable_directory(settings.output_dir, "--out (outputDir)")
    matcher(settings.exclude)
    if settings.listing == "inventory":
        return  # the inventory source checks its report location; the bucket may be unlisted
    bucket, prefix = context.outputs.bucket_name, context.prefixes[0]
    with s3_errors("listing", f"s3://{bucket}/{prefix}"):
        quick = (context.session or botocore.session.Session()).create_client(
            "s3",
            region_name=context.outputs.region,
            endpoint_url=context.s3.meta.endpoint_url,
            config=_CHECK_CONFIG,
        )
        quick.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)


def writable_directory(path: Path, what: str) -> None:
    """Fail unless `path` is, or can be made, a directory this process can write in;
    creates nothing that outlasts the check."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(
            f"{what} {path}: {existing} is a file, not a directory; choose another --out"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or os.strerror(error.errno or errno.EACCES)
        raise UserError(
            f"{what} {path}: cannot write in {existing} ({reason}); choose another --out"
        ) from None
