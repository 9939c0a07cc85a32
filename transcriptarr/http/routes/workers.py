"""Workers API: ``/api/workers``."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from transcriptarr.actors.pool import PoolStats
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.worker_types import WorkerStatus, WorkerType
from transcriptarr.errors import InvalidInput, Unavailable
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.context import services
from transcriptarr.models import Message, StrictBody

routes = ApiRoutes(tag="Workers")

MAX_TIMEOUT_S = 3600.0
MAX_WORKERS_PER_REQUEST = 64


class WorkerCreate(StrictBody):
    """Body of ``POST /api/workers``."""

    worker_type: str = Field(description="cpu or gpu")
    device_id: int | None = Field(
        default=None, ge=0, description="GPU device ID (required for GPU workers)"
    )

    @field_validator("worker_type")
    @classmethod
    def _worker_type(cls, value: str) -> str:
        normalised = value.strip().lower()
        if normalised not in {kind.value for kind in WorkerType}:
            raise ValueError(f"Invalid worker type {value!r}: use cpu or gpu")
        return normalised


class WorkerPath(BaseModel):
    worker_id: str = Field(min_length=1, max_length=64, description="Worker ID")


class RemoveQuery(BaseModel):
    timeout: float = Field(
        default=30.0, ge=0, le=MAX_TIMEOUT_S, description="Timeout in seconds"
    )


class PoolStartQuery(BaseModel):
    cpu_workers: int = Field(
        default=0, ge=0, le=MAX_WORKERS_PER_REQUEST, description="CPU workers"
    )
    gpu_workers: int = Field(
        default=0, ge=0, le=MAX_WORKERS_PER_REQUEST, description="GPU workers"
    )


class PoolStopQuery(BaseModel):
    timeout: float = Field(
        default=30.0, ge=0, le=MAX_TIMEOUT_S, description="Timeout per worker"
    )


def _pool(request: web.Request) -> ActorProxy:
    pool = services(request).pool
    if pool is None:
        raise Unavailable("The worker pool is not running")
    return pool


@routes.get(
    "/api/workers",
    summary="List all workers and their status",
    response=list[WorkerStatus],
)
async def list_workers(request: web.Request) -> list[WorkerStatus]:
    workers: list[WorkerStatus] = await _pool(request).list_workers()
    return workers


@routes.get("/api/workers/stats", summary="Worker pool statistics", response=PoolStats)
async def worker_stats(request: web.Request) -> PoolStats:
    stats: PoolStats = await _pool(request).stats()
    return stats


@routes.get(
    "/api/workers/{worker_id}",
    summary="Get a worker's status",
    path_model=WorkerPath,
    response=WorkerStatus,
    errors={404: "Worker not found"},
)
async def get_worker(request: web.Request, *, path: WorkerPath) -> WorkerStatus:
    status: WorkerStatus = await _pool(request).get_worker(path.worker_id)
    return status


@routes.post(
    "/api/workers",
    summary="Add a worker to the pool",
    body=WorkerCreate,
    response=WorkerStatus,
    status=201,
    errors={
        400: "Invalid worker type, missing device_id for GPU, or no GPU or "
        "free capacity for the worker"
    },
)
async def add_worker(request: web.Request, *, body: WorkerCreate) -> WorkerStatus:
    if body.worker_type == WorkerType.GPU and body.device_id is None:
        raise InvalidInput("device_id is required for GPU workers", field="device_id")
    status: WorkerStatus = await _pool(request).add_worker(
        body.worker_type, body.device_id
    )
    return status


@routes.delete(
    "/api/workers/{worker_id}",
    summary="Remove a worker from the pool",
    path_model=WorkerPath,
    query=RemoveQuery,
    response=Message,
    errors={404: "Worker not found"},
)
async def remove_worker(
    request: web.Request, *, path: WorkerPath, query: RemoveQuery
) -> Message:
    await _pool(request).remove_worker(path.worker_id, query.timeout)
    return Message(message=f"Worker {path.worker_id} removed successfully")


@routes.post(
    "/api/workers/pool/start",
    summary="Start the worker pool with the given workers",
    query=PoolStartQuery,
    response=Message,
    errors={400: "No GPU or free capacity for the workers"},
)
async def start_pool(request: web.Request, *, query: PoolStartQuery) -> Message:
    await _pool(request).start_pool(query.cpu_workers, query.gpu_workers)
    return Message(
        message=f"Worker pool started: {query.cpu_workers} CPU workers, "
        f"{query.gpu_workers} GPU workers"
    )


@routes.post(
    "/api/workers/pool/stop",
    summary="Stop all workers in the pool",
    query=PoolStopQuery,
    response=Message,
)
async def stop_pool(request: web.Request, *, query: PoolStopQuery) -> Message:
    await _pool(request).stop_pool(query.timeout)
    return Message(message="Worker pool stopped successfully")
