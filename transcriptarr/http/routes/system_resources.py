"""System Resources API: CPU, memory and GPUs of the machine serving the API."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr.http.api import ApiRoutes
from transcriptarr.resources import (
    CpuInfo,
    GpuInfo,
    MemoryInfo,
    ResourceMonitor,
    SystemResources,
    default_monitor,
)

routes = ApiRoutes(tag="System Resources")

RESOURCE_MONITOR_KEY: web.AppKey[ResourceMonitor] = web.AppKey(
    "resource_monitor", ResourceMonitor
)


class GpuPath(BaseModel):
    device_id: int = Field(description="GPU device ID (NVML index)")


def _monitor(request: web.Request) -> ResourceMonitor:
    """The app's monitor when one is set (tests), else the process-wide one."""
    monitor = request.app.get(RESOURCE_MONITOR_KEY)
    return monitor if monitor is not None else default_monitor()


@routes.get(
    "/api/system/resources",
    summary="CPU, memory and GPUs",
    response=SystemResources,
)
async def get_resources(request: web.Request) -> SystemResources:
    return await asyncio.to_thread(_monitor(request).snapshot)


@routes.get("/api/system/cpu", summary="CPU usage and counts", response=CpuInfo)
async def get_cpu(request: web.Request) -> CpuInfo:
    return await asyncio.to_thread(_monitor(request).cpu)


@routes.get("/api/system/memory", summary="Memory in GiB", response=MemoryInfo)
async def get_memory(request: web.Request) -> MemoryInfo:
    return await asyncio.to_thread(_monitor(request).memory)


@routes.get(
    "/api/system/gpus",
    summary="Every GPU (empty without an NVIDIA driver)",
    response=list[GpuInfo],
)
async def get_gpus(request: web.Request) -> list[GpuInfo]:
    return await asyncio.to_thread(_monitor(request).gpus)


@routes.get(
    "/api/system/gpu/{device_id}",
    summary="One GPU",
    response=GpuInfo,
    path_model=GpuPath,
    errors={400: "device_id is not an integer", 404: "GPU not found"},
)
async def get_gpu(request: web.Request, *, path: GpuPath) -> GpuInfo:
    return await asyncio.to_thread(_monitor(request).gpu, path.device_id)
