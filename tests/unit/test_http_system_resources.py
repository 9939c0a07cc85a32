"""The System Resources API over HTTP, on the real app with in-process actors.

This machine has no GPU: the no-GPU answers are the real ones. The GPU-present
answers come from a fake NVML object set on the app, because a GPU cannot run
here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_resources import FakeGpu, FakeNvml, needs_no_gpu, rtx_3080
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.settings import SettingsService
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services
from transcriptarr.http.routes.system_resources import RESOURCE_MONITOR_KEY
from transcriptarr.resources import GpuMonitor, ResourceMonitor

Client = TestClient[Any, Any]
MIB = 1024**2
GPU_KEYS = {
    "id",
    "name",
    "memory_total_mb",
    "memory_used_mb",
    "memory_free_mb",
    "utilization_percent",
}


@pytest.fixture
async def make_client(
    board: JobBoard, settings_service: SettingsService
) -> AsyncIterator[Callable[[FakeNvml | None], Any]]:
    """Start the app, with a fake NVML when given one."""
    clients: list[Client] = []

    async def start(nvml: FakeNvml | None) -> Client:
        services = Services(
            queue=ActorProxy(board), settings=ActorProxy(settings_service)
        )
        app = create_app(services)
        if nvml is not None:
            app[RESOURCE_MONITOR_KEY] = ResourceMonitor(GpuMonitor(nvml))
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def test_resources_hold_cpu_memory_and_gpus_as_the_spec_shapes_them(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(FakeNvml([rtx_3080()]))

    response = await api.get("/api/system/resources")

    body = await response.json()
    assert response.status == 200
    assert set(body) == {"cpu", "memory", "gpus"}
    assert set(body["cpu"]) == {
        "usage_percent",
        "count_logical",
        "count_physical",
        "frequency_mhz",
    }
    assert set(body["memory"]) == {"total_gb", "used_gb", "free_gb", "usage_percent"}
    assert body["gpus"][0]["name"] == "NVIDIA GeForce RTX 3080"


async def test_cpu_shows_usage_and_core_counts(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(None)

    response = await api.get("/api/system/cpu")

    body = await response.json()
    assert response.status == 200
    assert 0 <= body["usage_percent"] <= 100
    assert body["count_logical"] >= 1


async def test_memory_shows_total_used_and_free_in_gb(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(None)

    response = await api.get("/api/system/memory")

    body = await response.json()
    assert response.status == 200
    assert body["total_gb"] > 0
    assert abs(body["used_gb"] + body["free_gb"] - body["total_gb"]) <= 0.02
    assert 0 <= body["usage_percent"] <= 100


@needs_no_gpu
async def test_a_machine_without_a_gpu_lists_no_gpus(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(None)

    gpus = await api.get("/api/system/gpus")
    resources = await api.get("/api/system/resources")

    assert (gpus.status, await gpus.json()) == (200, [])
    assert (await resources.json())["gpus"] == []


@needs_no_gpu
async def test_gpu_zero_is_404_on_a_machine_without_a_gpu(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(None)

    response = await api.get("/api/system/gpu/0")

    assert response.status == 404
    assert await response.json() == {"detail": "GPU 0 not found"}


async def test_a_gpu_is_shown_exactly_as_the_spec_shapes_it(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    second = FakeGpu("NVIDIA A100", 40960 * MIB, 1024 * MIB, 80)
    api = await make_client(FakeNvml([rtx_3080(), second]))

    listing = await api.get("/api/system/gpus")
    one = await api.get("/api/system/gpu/0")

    expected = {
        "id": 0,
        "name": "NVIDIA GeForce RTX 3080",
        "memory_total_mb": 10240,
        "memory_used_mb": 2048,
        "memory_free_mb": 8192,
        "utilization_percent": 15,
    }
    gpus = await listing.json()
    assert [set(gpu) for gpu in gpus] == [GPU_KEYS, GPU_KEYS]
    assert gpus[0] == expected
    assert (one.status, await one.json()) == (200, expected)


async def test_an_unknown_gpu_id_is_404_when_gpus_exist(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(FakeNvml([rtx_3080()]))

    response = await api.get("/api/system/gpu/3")

    assert response.status == 404
    assert await response.json() == {"detail": "GPU 3 not found"}


@pytest.mark.parametrize("device_id", ["first", "1.5", "0x1"])
async def test_a_gpu_id_that_is_not_an_integer_is_400(
    make_client: Callable[[FakeNvml | None], Any], device_id: str
) -> None:
    api = await make_client(FakeNvml([rtx_3080()]))

    response = await api.get(f"/api/system/gpu/{device_id}")

    assert response.status == 400
    assert (await response.json())["field"] == "device_id"


async def test_a_driver_that_fails_to_load_shows_no_gpus_instead_of_an_error(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(FakeNvml([rtx_3080()], fail_init=True))

    response = await api.get("/api/system/gpus")

    assert (response.status, await response.json()) == (200, [])


async def test_the_resource_and_filesystem_routes_are_documented(
    make_client: Callable[[FakeNvml | None], Any],
) -> None:
    api = await make_client(None)

    document = await (await api.get("/openapi.json")).json()

    gpu = document["paths"]["/api/system/gpu/{device_id}"]["get"]
    assert {"400", "404"} <= set(gpu["responses"])
    assert {
        "/api/system/resources",
        "/api/system/cpu",
        "/api/system/memory",
        "/api/system/gpus",
        "/api/filesystem/browse",
        "/api/filesystem/common-paths",
    } <= set(document["paths"])
