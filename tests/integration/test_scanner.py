"""The scanner as a real Ray actor: scans over HTTP, real language detection,
and the scheduler on a real short interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.scanner_library import EXPECTED_JOBS, RULES, SCANNED_FILES, build_library

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]
WAIT_S = 60.0


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models cache for the session: the bundled model is joined once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def scanner_api(live_api: Client, tmp_path: Path, shared_models: Path) -> Client:
    """The live app; the scanner's models folder is the session's shared one."""
    (tmp_path / "models").symlink_to(shared_models, target_is_directory=True)
    return live_api


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def jobs(client: Client) -> list[dict[str, Any]]:
    page = await ok(await client.get("/api/jobs", params={"page_size": "500"}))
    found: list[dict[str, Any]] = page["jobs"]
    return found


def rows(found: list[dict[str, Any]], root: Path) -> set[tuple[object, ...]]:
    return {
        (
            str(Path(job["file_path"]).relative_to(root)),
            job["target_lang"],
            job["source_lang"],
            job["transcribe_or_translate"],
            job["quality_preset"],
            job["priority"],
        )
        for job in found
    }


async def test_scan_through_ray_lists_the_careful_persons_jobs_once(
    scanner_api: Client, tmp_path: Path
) -> None:
    root = build_library(tmp_path / "library")
    for rule in RULES:
        await ok(await scanner_api.post("/api/scan-rules", json=rule), 201)
    body = {"paths": [str(root)]}

    first = await ok(await scanner_api.post("/api/scanner/scan", json=body))
    assert first["scanned_files"] == SCANNED_FILES
    assert first["jobs_created"] == len(EXPECTED_JOBS)
    # M3 is untagged English speech: Whisper's detection makes it English.
    assert rows(await jobs(scanner_api), root) == EXPECTED_JOBS

    second = await ok(await scanner_api.post("/api/scanner/scan", json=body))
    assert second["jobs_created"] == 0
    assert second["matched_files"] == 0
    assert len(await jobs(scanner_api)) == len(EXPECTED_JOBS)

    status = await ok(await scanner_api.get("/api/scanner/status"))
    assert status["total_scans"] == 2
    assert status["last_scan_time"] is not None


async def test_analyze_through_ray_probes_the_file(
    scanner_api: Client, tmp_path: Path
) -> None:
    root = build_library(tmp_path / "library")
    path = root / "anime" / "Show" / "A3.mkv"
    found = await ok(
        await scanner_api.post("/api/scanner/analyze", params={"file_path": str(path)})
    )
    assert found["audio_tracks"][0]["language"] == "jpn"
    assert found["embedded_subtitles"][0]["forced"] is True
    missing = await scanner_api.post(
        "/api/scanner/analyze", params={"file_path": str(root / "nope.mkv")}
    )
    assert missing.status == 404


async def test_scheduler_on_a_real_short_interval_scans_on_time(
    scanner_api: Client, tmp_path: Path
) -> None:
    root = build_library(tmp_path / "library")
    body = {"interval_minutes": 0.05, "paths": [str(root / "movies")]}
    started = await ok(
        await scanner_api.post("/api/scanner/scheduler/start", json=body)
    )
    assert started == {"message": "Scheduler started successfully (every 0.05 minutes)"}
    status = await ok(await scanner_api.get("/api/scanner/status"))
    assert status["scheduler_running"] is True
    first_due = status["next_scan_time"]
    assert first_due is not None

    deadline = time.monotonic() + WAIT_S
    while status["total_scans"] < 2:
        assert time.monotonic() < deadline, "the scheduled scans did not run"
        await asyncio.sleep(0.2)
        status = await ok(await scanner_api.get("/api/scanner/status"))
    assert status["last_scan_time"] >= first_due
    assert status["next_scan_time"] > status["last_scan_time"]

    stopped = await ok(await scanner_api.post("/api/scanner/scheduler/stop"))
    assert stopped == {"message": "Scheduler stopped successfully"}
    summary = (await ok(await scanner_api.get("/api/status")))["scanner"]
    assert summary["scheduler_running"] is False
