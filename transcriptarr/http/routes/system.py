"""System endpoints: ``/``, ``/health``, ``/api/status``."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from transcriptarr import __version__
from transcriptarr.errors import TranscriptarrError
from transcriptarr.http.api import ApiRoutes, json_response
from transcriptarr.http.context import Services, services
from transcriptarr.models import (
    Health,
    QueueStats,
    RootInfo,
    ScannerSummary,
    StatusReport,
    SystemSummary,
    WorkersSummary,
)

logger = logging.getLogger(__name__)

routes = ApiRoutes(tag="System")


@routes.get("/", summary="API information", response=RootInfo, public=False)
async def root(request: web.Request) -> RootInfo:
    return RootInfo(
        name="Transcriptarr API",
        version=__version__,
        status="running",
        message="Frontend not built. Access API docs at /docs",
    )


class ProviderStatus(BaseModel):
    version: str


@routes.get(
    "/status",
    summary="Provider status (Bazarr's connection test)",
    response=ProviderStatus,
    public=True,
)
async def provider_status(request: web.Request) -> ProviderStatus:
    """Open without a key: it reveals only the version."""
    return ProviderStatus(version=f"Transcriptarr {__version__}")


async def workers_summary(svc: Services) -> WorkersSummary:
    if svc.pool is None:
        return WorkersSummary()
    stats: dict[str, Any] = await svc.pool.summary()
    return WorkersSummary.model_validate(stats)


async def scanner_summary(svc: Services) -> ScannerSummary:
    if svc.scanner is None:
        return ScannerSummary()
    status: dict[str, Any] = await svc.scanner.summary()
    return ScannerSummary.model_validate(status)


@routes.get(
    "/health",
    summary="Health check",
    response=Health,
    errors={503: "Unhealthy: the database or Ray cannot answer"},
    public=True,
)
async def health(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    database, ray_state = "connected", "connected"
    workers, queue_size = 0, 0
    try:
        await svc.queue.ping()
        await svc.settings.ping()
    except TranscriptarrError as exc:
        database = f"error: {exc.detail}"
    except Exception as exc:  # Ray errors: the actor or the cluster is gone.
        logger.warning("health check cannot reach the queue actor: %s", exc)
        ray_state = f"error: {type(exc).__name__}"
    if ray_state == "connected":
        try:
            stats: QueueStats = await svc.queue.stats()
            queue_size = stats.queued
            workers = (await workers_summary(svc)).total_workers
        except Exception as exc:
            ray_state = f"error: {type(exc).__name__}"
    healthy = database == "connected" and ray_state == "connected"
    body = Health(
        status="healthy" if healthy else "unhealthy",
        database=database,
        ray=ray_state,
        workers=workers,
        queue_size=queue_size,
    )
    return json_response(body.model_dump(), status=200 if healthy else 503)


@routes.get("/api/status", summary="System status overview", response=StatusReport)
async def status(request: web.Request) -> StatusReport:
    svc = services(request)
    queue: QueueStats = await svc.queue.stats()
    return StatusReport(
        system=SystemSummary(
            status="running",
            uptime_seconds=round(time.time() - svc.started_at_s, 1),
        ),
        workers=await workers_summary(svc),
        queue=queue,
        scanner=await scanner_summary(svc),
    )
