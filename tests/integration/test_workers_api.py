"""Every Workers API route over HTTP, on a real pool of Ray worker processes.

The test cluster has two CPUs and no GPU: the pool starts one one-thread CPU
worker, a second fits, a third does not, and no GPU worker can ever be placed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.conftest import PoolRig, PoolRigFactory
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services
from transcriptarr.models import JobStatus

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

Client = TestClient[Any, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(pool_rigs: PoolRigFactory) -> AsyncIterator[PoolRig]:
    async with pool_rigs(cpu_workers=1) as pool_rig:
        yield pool_rig


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(rig: PoolRig) -> AsyncIterator[Client]:
    services = Services(
        queue=rig.queue,
        settings=ActorProxy(rig.handles.settings),
        pool=rig.pool,
    )
    test_client: Client = TestClient(TestServer(create_app(services)))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def test_pool_starts_with_the_workers_in_the_settings(client: Client) -> None:
    response = await client.get("/api/workers")
    workers = await response.json()
    assert response.status == 200
    assert [(w["worker_id"], w["worker_type"]) for w in workers] == [
        ("worker-cpu-0", "cpu")
    ]
    assert workers[0]["status"] == "idle"
    one = await client.get("/api/workers/worker-cpu-0")
    assert (await one.json())["worker_id"] == "worker-cpu-0"


async def test_stats_health_and_status_count_the_real_workers(
    client: Client,
) -> None:
    stats = await (await client.get("/api/workers/stats")).json()
    health = await (await client.get("/health")).json()
    status = await (await client.get("/api/status")).json()

    assert (stats["total_workers"], stats["cpu_workers"]) == (1, 1)
    assert stats["is_running"] is True
    assert health["workers"] == 1
    assert status["workers"]["total_workers"] == 1
    assert status["workers"]["idle_workers"] == 1


async def test_unknown_worker_is_404(client: Client) -> None:
    got = await client.get("/api/workers/worker-cpu-99")
    deleted = await client.delete("/api/workers/worker-cpu-99")
    assert (got.status, deleted.status) == (404, 404)
    assert await got.json() == {"detail": "Worker worker-cpu-99 not found"}


async def test_bad_worker_type_is_400(client: Client) -> None:
    response = await client.post("/api/workers", json={"worker_type": "npu"})
    assert response.status == 400
    assert "Invalid worker type 'npu'" in (await response.json())["detail"]


async def test_gpu_worker_without_device_id_is_400(client: Client) -> None:
    response = await client.post("/api/workers", json={"worker_type": "gpu"})
    assert response.status == 400
    assert (await response.json())["detail"] == (
        "device_id is required for GPU workers"
    )


async def test_gpu_worker_where_ray_sees_no_gpu_is_400_and_nothing_waits(
    client: Client,
) -> None:
    # The refusal comes before any actor is created, so no request or actor
    # is left waiting for a GPU that will never come.
    response = await client.post(
        "/api/workers", json={"worker_type": "gpu", "device_id": 0}
    )

    assert response.status == 400
    assert "Ray sees no GPU" in (await response.json())["detail"]
    stats = await (await client.get("/api/workers/stats")).json()
    assert stats["gpu_workers"] == 0


async def test_cpu_worker_is_added_then_removed(client: Client) -> None:
    added = await client.post("/api/workers", json={"worker_type": "cpu"})
    body = await added.json()
    assert added.status == 201
    assert (body["worker_id"], body["status"]) == ("worker-cpu-1", "idle")

    full = await client.post("/api/workers", json={"worker_type": "cpu"})
    assert full.status == 400
    assert "No room for another CPU worker" in (await full.json())["detail"]

    removed = await client.delete("/api/workers/worker-cpu-1?timeout=5")
    assert await removed.json() == {
        "message": "Worker worker-cpu-1 removed successfully"
    }
    listed = await (await client.get("/api/workers")).json()
    assert [w["worker_id"] for w in listed] == ["worker-cpu-0"]


async def test_pool_stops_and_starts_again_and_still_transcribes(
    client: Client, rig: PoolRig
) -> None:
    stopped = await client.post("/api/workers/pool/stop?timeout=5")
    assert await stopped.json() == {"message": "Worker pool stopped successfully"}
    stats = await (await client.get("/api/workers/stats")).json()
    assert (stats["total_workers"], stats["is_running"]) == (0, False)

    started = await client.post("/api/workers/pool/start?cpu_workers=1")
    assert await started.json() == {
        "message": "Worker pool started: 1 CPU workers, 0 GPU workers"
    }
    job = await rig.wait(await rig.submit(rig.copy("english.mkv")))
    assert job.status is JobStatus.COMPLETED, job.error
    assert (await (await client.get("/health")).json())["workers"] == 1
