"""A fresh server walked through the standalone wizard, on the real local Ray.

The actors are created the way the server creates them (``create_actors``,
then ``create_pool``). The server starts with no worker (``worker_cpu_count``
0), so the worker seen afterwards is the one the wizard started, without a
restart. The test stops once the scan has created the job; transcription is
left to the worker tests.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import ray
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from transcriptarr.actors import cluster
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]
MEDIA = Path(__file__).parent.parent / "fixtures" / "media"
RAY_SETTLE_S = 30.0


def _cpus(*, free: bool) -> float:
    """Ray's CPUs: the free ones, or all of them."""
    figures = ray.available_resources if free else ray.cluster_resources
    return float(figures().get("CPU", 0.0))  # type: ignore[no-untyped-call]


async def _wait_for_free_cpus() -> None:
    """Let Ray take back the worker's CPU before another test asks for it."""
    deadline_s = time.monotonic() + RAY_SETTLE_S
    total = _cpus(free=False)
    while _cpus(free=True) < total:
        if time.monotonic() > deadline_s:
            return
        await asyncio.sleep(0.2)


@pytest.fixture
async def fresh_server(
    ray_cluster: None, tmp_path: Path, models_dir: Path
) -> AsyncIterator[Client]:
    """The app over queue, settings, scanner and pool actors on Ray."""
    suffix = f"-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    handles = await cluster.create_actors(data_dir, suffix=suffix, with_pool=False)
    await handles.settings.update.remote("worker_cpu_count", "0")
    handles.pool = await cluster.create_pool(models_dir, suffix=suffix)
    services = Services(
        queue=ActorProxy(handles.queue),
        settings=ActorProxy(handles.settings),
        scanner=ActorProxy(handles.scanner),
        pool=ActorProxy(handles.pool),
    )
    client: Client = TestClient(TestServer(create_app(services)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await cluster.close_actors(handles, kill=True)
        await _wait_for_free_cpus()


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def test_standalone_runs_workers_and_the_scheduler_and_a_scan_makes_jobs(
    fresh_server: Client, tmp_path: Path
) -> None:
    client = fresh_server
    library = tmp_path / "library"
    library.mkdir()
    movie = library / "movie.mkv"
    shutil.copyfile(MEDIA / "english.mkv", movie)
    first = await ok(await client.get("/api/setup/status"))
    assert first == {"is_first_run": True, "setup_completed": False}
    before = await ok(await client.get("/api/workers/stats"))
    assert before["total_workers"] == 0

    body = {
        "library_paths": [str(library)],
        "scan_rules": [
            {
                "name": "English audio without subtitles",
                "audio_language_is": "en",
                "missing_external_subtitle_lang": "en",
                "target_language": "en",
                "action_type": "transcribe",
            }
        ],
        "worker_config": {"count": 1, "type": "cpu"},
        "scanner_config": {"interval_minutes": 60},
    }
    result = await ok(await client.post("/api/setup/standalone", json=body))
    assert result == {
        "success": True,
        "message": "Standalone mode configured successfully",
        "bazarr_info": None,
    }

    stats = await ok(await client.get("/api/workers/stats"))
    assert (stats["total_workers"], stats["cpu_workers"]) == (1, 1)
    assert stats["is_running"] is True
    assert stats["error_workers"] == 0
    scanner = await ok(await client.get("/api/scanner/status"))
    assert scanner["scheduler_enabled"] is True
    assert scanner["scheduler_running"] is True
    assert scanner["next_scan_time"] is not None
    done = await ok(await client.get("/api/setup/status"))
    assert done == {"is_first_run": False, "setup_completed": True}

    scan = await ok(await client.post("/api/scanner/scan"))
    assert scan["jobs_created"] == 1
    assert scan["paths_scanned"] == [str(library)]
    page = await ok(await client.get("/api/jobs"))
    assert [(j["file_path"], j["target_lang"]) for j in page["jobs"]] == [
        (str(movie), "eng")
    ]
