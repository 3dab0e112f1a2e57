"""The app factory: `create_app(settings)` wires routes, middleware and (in the lifespan)
the Redis client, storage and job services. Nothing connects at import time."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import start_http_server

from consumers.storage import DOWNLOAD_ROUTE, Storage
from frontend.api.fast_predict import FastPredict
from frontend.api.main import api_router
from frontend.api.routes import site
from frontend.core.config import FrontendSettings, get_settings
from frontend.core.errors import add_error_handlers
from frontend.core.metrics import ApiMetrics
from frontend.core.middleware import (BodyLimitMiddleware, RequestContextMiddleware, SecurityHeaders,
                                      TokenGate, TrailingSlashMiddleware)
from frontend.core.security import origin, portal_policy
from frontend.openapi import contract_openapi
from frontend.services.bucket import Bucket
from frontend.services.catalogue import ModelCatalogue
from frontend.services.jobs import Jobs
from frontend.services.redis_async import redis_client
from frontend.services.waiting import ModelServerView

MULTIPART_OVERHEAD_BYTES = 64 * 1024
# What needs no token under /api: the health check, this document and downloads (signed links).
OPEN_PATHS = frozenset({"/api/health-check", "/api/swagger.json"})
OPEN_PREFIXES = ("/api/download/",)
DESCRIPTION = """Upload images, create segmentation jobs, follow them and download their results.

Errors answer `{"message": ...}`. When the kiosk has a token, send `Authorization: Bearer <token>`
(the health check, this document and signed download links need none)."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to Redis and storage, create the job queues, serve metrics on their own port if
    asked; close Redis at shutdown."""
    settings: FrontendSettings = app.state.settings
    client = redis_client(settings.redis_url)
    storage = await anyio.to_thread.run_sync(Storage.from_settings, settings)
    bucket = Bucket(storage, settings)
    jobs = Jobs(client, bucket, ModelCatalogue(bucket, settings.models_cache_seconds),
                settings, app.state.metrics)
    metrics_server = None
    if settings.metrics_port:
        metrics_server, _ = start_http_server(settings.metrics_port, addr=settings.host,
                                              registry=app.state.metrics.registry)
    try:
        await jobs.start()
        jobs.waiting = ModelServerView.from_settings(settings)
        app.state.bucket, app.state.jobs = bucket, jobs
        yield
    finally:
        await client.aclose()
        if metrics_server is not None:
            metrics_server.shutdown()


def create_app(settings: FrontendSettings | None = None) -> FastAPI:
    """The API and portal for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    app = FastAPI(title="Kiosk API", version="1.0",
                  summary="DeepCell Kiosk-compatible image segmentation jobs", description=DESCRIPTION,
                  openapi_url="/api/swagger.json", docs_url=None, redoc_url=None,
                  redirect_slashes=False, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    add_error_handlers(app)
    app.include_router(api_router)
    app.include_router(site.router)
    app.mount("/static", StaticFiles(directory=site.STATIC_DIR), name="static")
    app.openapi = lambda: contract_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(FastPredict, token=settings.token)  # innermost: inside the limits and logs
    app.add_middleware(BodyLimitMiddleware, default_limit=settings.max_json_bytes,
                       limits={"/api/upload": settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES},
                       max_in_flight=settings.max_bodies_bytes, read_timeout=settings.body_timeout_seconds)
    app.add_middleware(TokenGate, token=settings.token, open_paths=OPEN_PATHS, open_prefixes=OPEN_PREFIXES)
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(SecurityHeaders, portal_policy=portal_policy(_image_origins(settings)),
                       download_prefix=DOWNLOAD_ROUTE)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app


def _image_origins(settings: FrontendSettings) -> list[str]:
    """Where the portal's previews may come from: this API as it names itself, cloud buckets'
    signed URLs (https) and an S3-compatible endpoint."""
    origins = [origin(settings.public_url), "https:"]
    if settings.s3_endpoint_url:
        origins.append(origin(settings.s3_endpoint_url))
    return origins
