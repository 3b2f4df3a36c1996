"""The API's routes: v2 REST by resource family (one module each) and the v1 RPC family (`v1`)."""

from __future__ import annotations

from sandbox.routes import datasets, folders, integrations, items, metadata_schema, upload_jobs
from sandbox.routes.common import Services
from sandbox.routing import Router
from sandbox.s3_access import S3Gateway


def build_v2_router(services: Services, gateway: S3Gateway) -> Router:
    router = Router()
    metadata_schema.register(router, services)
    integrations.register(router, services)
    folders.register(router, services)
    items.register(router, services, gateway)
    upload_jobs.register(router, services)
    datasets.register(router, services)
    return router
