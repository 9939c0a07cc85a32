"""Scanner API: ``/api/scanner``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr.actors.scanner import ScannerStatus, ScanRequest
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.routes.scan_rules import scanner
from transcriptarr.library import ScanResult
from transcriptarr.models import Message
from transcriptarr.scan_triggers import SchedulerStart, WatcherStart

routes = ApiRoutes(tag="Scanner")


class AnalyzeQuery(BaseModel):
    file_path: str = Field(min_length=1, max_length=4096, description="Path to file")


class AudioTrackInfo(BaseModel):
    index: int
    codec: str
    language: str | None
    channels: int
    stream_index: int
    default: bool
    forced: bool
    title: str | None


class SubtitleTrackInfo(BaseModel):
    index: int
    codec: str
    language: str | None
    is_text: bool
    forced: bool
    default: bool
    hearing_impaired: bool
    stream_index: int


class ExternalSubtitleInfo(BaseModel):
    path: str
    language: str | None
    forced: bool
    hearing_impaired: bool
    format: str


class MediaAnalysis(BaseModel):
    """What probing found in one file (``POST /api/scanner/analyze``)."""

    file_path: str
    audio_tracks: list[AudioTrackInfo]
    embedded_subtitles: list[SubtitleTrackInfo]
    external_subtitles: list[ExternalSubtitleInfo]
    duration_seconds: float
    is_video: bool


@routes.get("/api/scanner/status", summary="Get scanner status", response=ScannerStatus)
async def status(request: web.Request) -> ScannerStatus:
    found: dict[str, Any] = await scanner(request).status()
    return ScannerStatus.model_validate(found)


@routes.post(
    "/api/scanner/scan",
    summary="Trigger a manual scan (default: the library paths)",
    body=ScanRequest,
    body_optional=True,
    response=ScanResult,
    errors={
        400: "No library paths configured, or a path is not a directory",
        404: "Path not found",
    },
)
async def scan(request: web.Request, *, body: ScanRequest | None) -> ScanResult:
    given = body or ScanRequest()
    found: dict[str, Any] = await scanner(request).scan(given.paths, given.recursive)
    return ScanResult.model_validate(found)


@routes.post(
    "/api/scanner/scheduler/start",
    summary="Start the scheduled scanner (default: the settings)",
    body=SchedulerStart,
    body_optional=True,
    response=Message,
    errors={
        400: "Invalid cron expression or interval, or a path is not a directory",
        404: "Path not found",
    },
)
async def start_scheduler(
    request: web.Request, *, body: SchedulerStart | None
) -> Message:
    message: str = await scanner(request).start_scheduler(body)
    return Message(message=message)


@routes.post(
    "/api/scanner/scheduler/stop",
    summary="Stop the scheduled scanner",
    response=Message,
)
async def stop_scheduler(request: web.Request) -> Message:
    message: str = await scanner(request).stop_scheduler()
    return Message(message=message)


@routes.post(
    "/api/scanner/watcher/start",
    summary="Start the file watcher (default: the library paths)",
    body=WatcherStart,
    body_optional=True,
    response=Message,
    errors={
        400: "No library paths configured, or a path is not a directory",
        404: "Path not found",
    },
)
async def start_watcher(request: web.Request, *, body: WatcherStart | None) -> Message:
    message: str = await scanner(request).start_watcher(body)
    return Message(message=message)


@routes.post(
    "/api/scanner/watcher/stop", summary="Stop the file watcher", response=Message
)
async def stop_watcher(request: web.Request) -> Message:
    message: str = await scanner(request).stop_watcher()
    return Message(message=message)


@routes.post(
    "/api/scanner/analyze",
    summary="Probe one media file",
    query=AnalyzeQuery,
    response=MediaAnalysis,
    errors={400: "Path is not a file, or not readable media", 404: "File not found"},
)
async def analyze(request: web.Request, *, query: AnalyzeQuery) -> MediaAnalysis:
    found: dict[str, Any] = await scanner(request).analyze(query.file_path)
    return MediaAnalysis.model_validate(found)
