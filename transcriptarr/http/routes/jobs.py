"""Jobs API: ``/api/jobs``."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr.http.api import ApiRoutes, JsonBytes
from transcriptarr.http.context import page_cache, services, submitter
from transcriptarr.http.security import allowed_roots
from transcriptarr.models import (
    Job,
    JobCreate,
    JobPage,
    JobStatus,
    Message,
    QueueStats,
)
from transcriptarr.paths import resolve_confined

routes = ApiRoutes(tag="Jobs")


class JobListQuery(BaseModel):
    status_filter: JobStatus | None = Field(
        default=None, description="queued, processing, completed, failed, cancelled"
    )
    page: int = Field(default=1, ge=1, description="Page number (1-based)")
    page_size: int = Field(default=50, ge=1, le=500, description="Items per page")


class JobPath(BaseModel):
    job_id: str = Field(min_length=1, max_length=64)


@routes.get("/api/jobs", summary="List jobs", query=JobListQuery, response=JobPage)
async def list_jobs(request: web.Request, *, query: JobListQuery) -> JsonBytes:
    key = (query.status_filter, query.page, query.page_size)

    async def fetch() -> tuple[int, bytes]:
        found: tuple[int, bytes] = await services(request).queue.list_jobs_json(*key)
        return found

    return JsonBytes(await page_cache(request).page(key, fetch))


@routes.get("/api/jobs/stats", summary="Queue statistics", response=QueueStats)
async def job_stats(request: web.Request) -> QueueStats:
    stats: QueueStats = await services(request).queue.stats()
    return stats


@routes.post("/api/jobs/queue/clear", summary="Clear completed jobs", response=Message)
async def clear_completed(request: web.Request) -> Message:
    count = await services(request).queue.clear_completed()
    page_cache(request).invalidate()
    return Message(message=f"Cleared {count} completed jobs")


@routes.get(
    "/api/jobs/{job_id}",
    summary="Get a job",
    path_model=JobPath,
    response=Job,
    errors={404: "Job not found"},
)
async def get_job(request: web.Request, *, path: JobPath) -> Job:
    job: Job = await services(request).queue.get(path.job_id)
    return job


@routes.post(
    "/api/jobs",
    summary="Create a transcription job",
    body=JobCreate,
    response=Job,
    status=201,
    errors={
        400: "Invalid quality preset or body",
        403: "file_path is outside the allowed folders (filesystem_roots)",
        409: "Job already exists",
    },
)
async def create_job(request: web.Request, *, body: JobCreate) -> Job:
    roots = await allowed_roots(request)
    # The check is on the resolved path (realpath touches the disk: off the
    # loop); the job keeps the path as the library names it, so the subtitle
    # lands beside the name the media server knows, symlink or not.
    await asyncio.to_thread(resolve_confined, body.file_path, roots)
    # normpath is lexical (no disk access): "a/../b" and "a/b" dedupe as one.
    lexical = os.path.normpath(body.file_path)  # noqa: ASYNC240
    named = body.model_copy(update={"file_path": lexical})
    job = await submitter(request).submit(named)
    page_cache(request).invalidate()
    return job


@routes.post(
    "/api/jobs/{job_id}/retry",
    summary="Retry a failed job",
    path_model=JobPath,
    response=Job,
    errors={400: "Job is not failed", 404: "Job not found"},
)
async def retry_job(request: web.Request, *, path: JobPath) -> Job:
    job: Job = await services(request).queue.retry(path.job_id)
    page_cache(request).invalidate()
    return job


async def _cancel(request: web.Request, job_id: str) -> Message:
    await services(request).queue.cancel(job_id)
    page_cache(request).invalidate()
    return Message(message=f"Job {job_id} cancelled successfully")


_CANCEL_ERRORS = {400: "Job already in terminal state", 404: "Job not found"}


@routes.delete(
    "/api/jobs/{job_id}",
    summary="Cancel a job",
    path_model=JobPath,
    response=Message,
    errors=_CANCEL_ERRORS,
)
async def cancel_job(request: web.Request, *, path: JobPath) -> Message:
    return await _cancel(request, path.job_id)


@routes.post(
    "/api/jobs/{job_id}/cancel",
    summary="Cancel a job (POST alias of DELETE)",
    path_model=JobPath,
    response=Message,
    errors=_CANCEL_ERRORS,
)
async def cancel_job_post(request: web.Request, *, path: JobPath) -> Message:
    return await _cancel(request, path.job_id)
