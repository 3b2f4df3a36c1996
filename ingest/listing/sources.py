"""The listing source a command reads the bucket with, chosen by the `listing` setting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

from ingest.context import PlanContext
from ingest.errors import UserError
from ingest.listing import process
from ingest.listing.paginator import S3Lister
from ingest.listing.scan import ListedObject, scan


def listed_objects(context: PlanContext, warn: Callable[[str], None]) -> Iterator[ListedObject]:
    """The bucket's objects under the configured prefixes, in key order."""
    settings, bucket = context.settings, context.outputs.bucket_name
    if settings.listing != "fast":
        process.end_ahead()  # not listed by the child
    if settings.listing == "inventory":
        # Imported here: pyarrow takes a while to load, and only this source needs it.
        from ingest.listing.inventory import inventory_objects

        location = settings.inventory_location or context.outputs.inventory_location
        if not location:
            raise UserError(
                "listing 'inventory' needs a report location: enable `encord-s3:inventory` in the "
                "stack and run `pulumi up` (it exports `inventoryLocation`), or set "
                "`inventoryLocation` / --inventory-location s3://BUCKET/PREFIX/SOURCE-BUCKET/CONFIG-ID/"
            )
        return inventory_objects(
            context.s3,
            location,
            source_bucket=bucket,
            prefixes=context.prefixes,
            max_age=timedelta(hours=settings.inventory_max_age_hours),
            warn=warn,
        )
    if settings.listing == "paginator":
        return scan(S3Lister(context.s3, bucket), context.prefixes, settings.scan_workers)
    # In a child process: its requests and parsing run on a core of their own.
    return process.listed_in_child(*_child_listing(context))


def listing_begun(context: PlanContext) -> AbstractContextManager[None]:
    """The listing `listed_objects(context, …)` reads, begun now when a child lists it
    (`process.listing_begun`); otherwise nothing yet."""
    if context.settings.listing != "fast":
        return nullcontext()
    return process.listing_begun(*_child_listing(context))


def _child_listing(context: PlanContext) -> tuple[Any, str, list[str], int]:
    settings, bucket = context.settings, context.outputs.bucket_name
    return context.s3, bucket, list(context.prefixes), settings.scan_workers
