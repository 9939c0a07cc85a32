"""The Workers API over HTTP, on a pool of in-process fake workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_worker_pool import TWO_GPUS, FakeLauncher
from transcriptarr.actors import pool as pool_module
from transcriptarr.actors.placement import ClusterResources
from transcriptarr.actors.pool import WorkerPool
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.settings import SettingsService
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services

Client = TestClient[Any, Any]

WORKER_FIELDS = {
    "worker_id",
    "worker_type",
    "device_id",
    "status",
    "current_job_id",
    "jobs_completed",
    "jobs_failed",
    "uptime_seconds",
    "current_job_progress",
    "current_job_eta",
}


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher(
        ClusterResources(
            total_cpus=2, free_cpus=2, total_gpus=0, free_gpus=0, gpus_per_node=0
        )
    )


@pytest.fixture
async def client(
    board: JobBoard,
    settings_service: SettingsService,
    launcher: FakeLauncher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Client]:
    monkeypatch.setattr(pool_module, "RESOURCE_SETTLE_S", 0.0)
    pool = WorkerPool(board, settings_service, tmp_path, launcher=launcher)
    services = Services(
        queue=ActorProxy(board),
        settings=ActorProxy(settings_service),
        pool=ActorProxy(pool),
    )
    test_client: Client = TestClient(TestServer(create_app(services)))
    await test_client.start_server()
    yield test_client
    await test_client.close()
    await pool.close()


async def test_list_shows_every_worker_with_the_spec_fields(client: Client) -> None:
    response = await client.get("/api/workers")
    body = await response.json()
    assert response.status == 200
    assert [w["worker_id"] for w in body] == ["worker-cpu-0"]
    assert set(body[0]) == WORKER_FIELDS
    assert body[0]["worker_type"] == "cpu"
    assert body[0]["device_id"] is None
    assert body[0]["status"] == "idle"


async def test_stats_have_the_spec_fields(client: Client) -> None:
    body = await (await client.get("/api/workers/stats")).json()
    assert body == {
        "total_workers": 1,
        "cpu_workers": 1,
        "gpu_workers": 0,
        "idle_workers": 1,
        "busy_workers": 0,
        "stopped_workers": 0,
        "error_workers": 0,
        "total_jobs_completed": 0,
        "total_jobs_failed": 0,
        "uptime_seconds": body["uptime_seconds"],
        "is_running": True,
    }


async def test_one_worker_is_shown_by_id(client: Client) -> None:
    response = await client.get("/api/workers/worker-cpu-0")
    assert response.status == 200
    assert (await response.json())["worker_id"] == "worker-cpu-0"


async def test_unknown_worker_is_404(client: Client) -> None:
    response = await client.get("/api/workers/worker-cpu-7")
    assert response.status == 404
    assert await response.json() == {"detail": "Worker worker-cpu-7 not found"}
    deleted = await client.delete("/api/workers/worker-cpu-7")
    assert deleted.status == 404


async def test_added_cpu_worker_is_created(client: Client) -> None:
    response = await client.post("/api/workers", json={"worker_type": "cpu"})
    body = await response.json()
    assert response.status == 201
    assert body["worker_id"] == "worker-cpu-1"
    assert body["status"] == "idle"


async def test_bad_worker_type_is_400(client: Client) -> None:
    response = await client.post("/api/workers", json={"worker_type": "tpu"})
    assert response.status == 400
    body = await response.json()
    assert body["detail"] == "worker_type: Invalid worker type 'tpu': use cpu or gpu"
    assert body["field"] == "worker_type"


async def test_gpu_worker_without_device_id_is_400(client: Client) -> None:
    response = await client.post("/api/workers", json={"worker_type": "gpu"})
    assert response.status == 400
    assert await response.json() == {
        "detail": "device_id is required for GPU workers",
        "field": "device_id",
    }


async def test_gpu_worker_where_ray_sees_no_gpu_is_400(client: Client) -> None:
    response = await client.post(
        "/api/workers", json={"worker_type": "gpu", "device_id": 0}
    )
    assert response.status == 400
    assert "Ray sees no GPU" in (await response.json())["detail"]


async def test_gpu_worker_is_created_on_a_gpu_cluster(
    client: Client, launcher: FakeLauncher
) -> None:
    launcher.available = TWO_GPUS
    response = await client.post(
        "/api/workers", json={"worker_type": "gpu", "device_id": 1}
    )
    body = await response.json()
    assert response.status == 201
    assert (body["worker_id"], body["worker_type"], body["device_id"]) == (
        "worker-gpu-0",
        "gpu",
        1,
    )


async def test_negative_device_id_and_unknown_fields_are_400(client: Client) -> None:
    negative = await client.post(
        "/api/workers", json={"worker_type": "gpu", "device_id": -1}
    )
    unknown = await client.post(
        "/api/workers", json={"worker_type": "cpu", "threads": 4}
    )
    assert (negative.status, unknown.status) == (400, 400)


async def test_removed_worker_leaves_the_list(client: Client) -> None:
    response = await client.delete("/api/workers/worker-cpu-0?timeout=1.5")
    assert response.status == 200
    assert await response.json() == {
        "message": "Worker worker-cpu-0 removed successfully"
    }
    assert await (await client.get("/api/workers")).json() == []


async def test_bad_timeout_is_400(client: Client) -> None:
    response = await client.delete("/api/workers/worker-cpu-0?timeout=soon")
    assert response.status == 400


async def test_pool_stop_and_start_answer_with_the_spec_messages(
    client: Client,
) -> None:
    stopped = await client.post("/api/workers/pool/stop?timeout=2")
    assert await stopped.json() == {"message": "Worker pool stopped successfully"}
    stats = await (await client.get("/api/workers/stats")).json()
    assert (stats["total_workers"], stats["is_running"]) == (0, False)

    started = await client.post("/api/workers/pool/start?cpu_workers=2")
    assert await started.json() == {
        "message": "Worker pool started: 2 CPU workers, 0 GPU workers"
    }
    stats = await (await client.get("/api/workers/stats")).json()
    assert (stats["total_workers"], stats["is_running"]) == (2, True)


async def test_pool_start_with_a_gpu_worker_and_no_gpu_is_400(client: Client) -> None:
    response = await client.post("/api/workers/pool/start?gpu_workers=1")
    assert response.status == 400
    assert "Ray sees no GPU" in (await response.json())["detail"]


async def test_health_and_status_report_the_real_worker_counts(
    client: Client,
) -> None:
    await client.post("/api/workers", json={"worker_type": "cpu"})
    health = await (await client.get("/health")).json()
    status = await (await client.get("/api/status")).json()
    assert health["workers"] == 2
    assert status["workers"] == {
        "total_workers": 2,
        "cpu_workers": 2,
        "gpu_workers": 0,
        "idle_workers": 2,
        "busy_workers": 0,
        "total_jobs_completed": 0,
        "total_jobs_failed": 0,
    }


async def test_routes_answer_503_without_a_pool(api: Client) -> None:
    response = await api.get("/api/workers")
    assert response.status == 503
    assert await response.json() == {"detail": "The worker pool is not running"}


async def test_every_workers_route_is_documented(client: Client) -> None:
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert set(paths["/api/workers"]) == {"get", "post"}
    assert set(paths["/api/workers/{worker_id}"]) == {"get", "delete"}
    assert "get" in paths["/api/workers/stats"]
    assert "post" in paths["/api/workers/pool/start"]
    assert "post" in paths["/api/workers/pool/stop"]
