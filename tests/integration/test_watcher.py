"""The file watcher inside the real scanner actor: files copied or moved into
a watched folder become exactly one job each, only once they are complete."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.scanner_library import FIXTURES

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]
WAIT_S = 60.0


@pytest.fixture
def scanner_api(live_api: Client) -> Client:
    return live_api


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def job_names(client: Client) -> list[str]:
    page = await ok(await client.get("/api/jobs", params={"page_size": "500"}))
    return sorted(job["file_name"] for job in page["jobs"])


async def wait_for_job(client: Client, name: str) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while name not in (names := await job_names(client)):
        assert time.monotonic() < deadline, f"no job appeared for {name}"
        await asyncio.sleep(0.1)
    return names


@pytest.fixture
async def watched(scanner_api: Client, tmp_path: Path) -> Path:
    """A watched library folder, with a rule that wants English subtitles."""
    library = tmp_path / "library"
    library.mkdir()
    await ok(
        await scanner_api.put("/api/settings/watcher_stable_s", json={"value": "1"})
    )
    rule = {"name": "English", "action": {"target_language": "eng"}}
    await ok(await scanner_api.post("/api/scan-rules", json=rule), 201)
    body = {"paths": [str(library)]}
    started = await ok(await scanner_api.post("/api/scanner/watcher/start", json=body))
    assert started == {"message": "File watcher started successfully"}
    return library


async def test_copied_and_moved_files_each_become_exactly_one_job(
    scanner_api: Client, watched: Path, tmp_path: Path
) -> None:
    whole = (FIXTURES / "english.mkv").read_bytes()
    staging = tmp_path / "downloads"
    staging.mkdir()

    with (watched / "copying.mkv").open("wb") as copying:
        copying.write(whole[: len(whole) // 2])
        copying.flush()
        shutil.copyfile(FIXTURES / "spanish.mkv", watched / "first.mkv")
        assert await wait_for_job(scanner_api, "first.mkv") == ["first.mkv"]
        copying.write(whole[len(whole) // 2 :])
    await wait_for_job(scanner_api, "copying.mkv")

    shutil.copyfile(FIXTURES / "english.mkv", staging / "moved.mkv")
    os.rename(staging / "moved.mkv", watched / "moved.mkv")
    await wait_for_job(scanner_api, "moved.mkv")

    season = watched / "Show" / "Season 1"
    season.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "english.mkv", season / "last.mkv")
    names = await wait_for_job(scanner_api, "last.mkv")
    assert names == ["copying.mkv", "first.mkv", "last.mkv", "moved.mkv"]

    status = await ok(await scanner_api.get("/api/scanner/status"))
    assert status["watcher_running"] is True
    assert status["watched_paths"] == [str(watched)]
    assert status["total_scans"] == 0


async def test_watcher_stops_and_says_so(scanner_api: Client, watched: Path) -> None:
    stopped = await ok(await scanner_api.post("/api/scanner/watcher/stop"))
    assert stopped == {"message": "File watcher stopped successfully"}
    summary = (await ok(await scanner_api.get("/api/status")))["scanner"]
    assert summary["watcher_running"] is False
    assert summary["watcher_enabled"] is False
