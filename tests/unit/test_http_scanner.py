"""Scanner API over HTTP, the scanner running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.scanner_library import (
    EXPECTED_JOBS,
    RULES,
    SCANNED_FILES,
    build_library,
)
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(
    board: JobBoard, settings_service: SettingsService, scanner: ScannerService
) -> AsyncIterator[Client]:
    services = Services(
        queue=ActorProxy(board),
        settings=ActorProxy(settings_service),
        scanner=ActorProxy(scanner),
    )
    test_client: Client = TestClient(TestServer(create_app(services)))
    await test_client.start_server()
    yield test_client
    await test_client.close()


@pytest.fixture
def library_root(tmp_path: Path) -> Path:
    return build_library(tmp_path / "library")


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_status_has_every_spec_field(client: Client) -> None:
    status = await ok(await client.get("/api/scanner/status"))
    assert status == {
        "scheduler_enabled": False,
        "scheduler_running": False,
        "next_scan_time": None,
        "watcher_enabled": False,
        "watcher_running": False,
        "watched_paths": [],
        "last_scan_time": None,
        "total_scans": 0,
        "scan_in_progress": False,
        "watcher_warning": None,
    }


async def test_scan_without_paths_or_library_paths_is_a_400(client: Client) -> None:
    bodies: list[dict[str, Any] | None] = [None, {}]
    for body in bodies:
        found = await error(await client.post("/api/scanner/scan", json=body), 400)
        assert found["detail"] == "No library paths configured"


async def test_scan_of_the_given_paths_answers_the_spec_counts(
    client: Client, library_root: Path
) -> None:
    for rule in RULES:
        await ok(await client.post("/api/scan-rules", json=rule), 201)
    body = {"paths": [str(library_root)], "recursive": True}
    result = await ok(await client.post("/api/scanner/scan", json=body))
    assert result == {
        "scanned_files": SCANNED_FILES,
        "matched_files": len(EXPECTED_JOBS),
        "jobs_created": len(EXPECTED_JOBS),
        "skipped_files": SCANNED_FILES - len(EXPECTED_JOBS),
        "paths_scanned": [str(library_root)],
    }
    again = await ok(await client.post("/api/scanner/scan", json=body))
    assert again["jobs_created"] == 0
    stats = await ok(await client.get("/api/jobs/stats"))
    assert stats["queued"] == len(EXPECTED_JOBS)
    status = await ok(await client.get("/api/scanner/status"))
    assert status["total_scans"] == 2
    assert status["last_scan_time"] == "2025-01-12T10:00:00"


async def test_scan_without_a_body_uses_the_library_paths(
    client: Client, settings_service: SettingsService, library_root: Path
) -> None:
    await settings_service.update("library_paths", str(library_root / "movies"))
    result = await ok(await client.post("/api/scanner/scan"))
    assert result["paths_scanned"] == [str(library_root / "movies")]


async def test_scan_of_a_missing_path_is_a_404(client: Client, tmp_path: Path) -> None:
    body = {"paths": [str(tmp_path / "nowhere")]}
    found = await error(await client.post("/api/scanner/scan", json=body), 404)
    assert found["detail"] == f"Path not found: {tmp_path / 'nowhere'}"


async def test_scan_of_a_file_is_a_400(client: Client, library_root: Path) -> None:
    path = str(library_root / "movies" / "M1" / "M1.mkv")
    found = await error(
        await client.post("/api/scanner/scan", json={"paths": [path]}), 400
    )
    assert found["detail"] == f"Path is not a directory: {path}"


async def test_scan_body_with_unknown_fields_is_a_400(client: Client) -> None:
    found = await error(
        await client.post("/api/scanner/scan", json={"path": "/x"}), 400
    )
    assert found["field"] == "path"


async def test_scheduler_start_and_stop_answer_the_spec_messages(
    client: Client,
) -> None:
    started = await ok(await client.post("/api/scanner/scheduler/start"))
    assert started == {"message": "Scheduler started successfully (every 360 minutes)"}
    status = await ok(await client.get("/api/scanner/status"))
    assert status["scheduler_running"] is True
    assert status["next_scan_time"] == "2025-01-12T16:00:00"
    stopped = await ok(await client.post("/api/scanner/scheduler/stop"))
    assert stopped == {"message": "Scheduler stopped successfully"}


async def test_scheduler_start_with_a_cron_expression_says_it(client: Client) -> None:
    body = {"enabled": True, "cron_expression": "0 2 * * *", "recursive": True}
    started = await ok(await client.post("/api/scanner/scheduler/start", json=body))
    assert started == {"message": "Scheduler started successfully (cron: 0 2 * * *)"}
    status = await ok(await client.get("/api/scanner/status"))
    assert status["next_scan_time"] == "2025-01-13T02:00:00"


async def test_scheduler_start_with_an_invalid_cron_expression_is_a_400(
    client: Client,
) -> None:
    body = {"cron_expression": "0 25 * * *"}
    found = await error(
        await client.post("/api/scanner/scheduler/start", json=body), 400
    )
    assert found["field"] == "cron_expression"


async def test_scheduler_start_with_a_missing_path_is_a_404(
    client: Client, tmp_path: Path
) -> None:
    body = {"paths": [str(tmp_path / "gone")]}
    await error(await client.post("/api/scanner/scheduler/start", json=body), 404)


async def test_watcher_start_without_library_paths_is_a_400(client: Client) -> None:
    found = await error(await client.post("/api/scanner/watcher/start"), 400)
    assert found["detail"] == "No library paths configured"


async def test_watcher_start_and_stop_answer_the_spec_messages(
    client: Client, tmp_path: Path
) -> None:
    body = {"enabled": True, "paths": [str(tmp_path)], "recursive": True}
    started = await ok(await client.post("/api/scanner/watcher/start", json=body))
    assert started == {"message": "File watcher started successfully"}
    status = await ok(await client.get("/api/scanner/status"))
    assert status["watcher_running"] is True
    assert status["watched_paths"] == [str(tmp_path)]
    stopped = await ok(await client.post("/api/scanner/watcher/stop"))
    assert stopped == {"message": "File watcher stopped successfully"}


async def test_analyze_returns_the_probe_in_the_spec_shape(
    client: Client, library_root: Path
) -> None:
    path = library_root / "anime" / "Show" / "A2.mkv"
    found = await ok(
        await client.post("/api/scanner/analyze", params={"file_path": str(path)})
    )
    assert found["file_path"] == str(path)
    track = found["audio_tracks"][0]
    assert (track["index"], track["codec"], track["language"], track["channels"]) == (
        0,
        "aac",
        "jpn",
        1,
    )
    assert found["embedded_subtitles"] == []
    external = found["external_subtitles"][0]
    assert (external["path"], external["language"]) == (
        str(path.with_name("A2.es.srt")),
        "spa",
    )
    assert found["is_video"] is True
    assert found["duration_seconds"] > 0


async def test_analyze_errors_follow_the_spec(
    client: Client, library_root: Path
) -> None:
    missing = str(library_root / "missing.mkv")
    found = await error(
        await client.post("/api/scanner/analyze", params={"file_path": missing}), 404
    )
    assert found["detail"] == f"File not found: {missing}"
    folder = str(library_root / "movies")
    found = await error(
        await client.post("/api/scanner/analyze", params={"file_path": folder}), 400
    )
    assert found["detail"] == f"Path is not a file: {folder}"
    found = await error(await client.post("/api/scanner/analyze"), 400)
    assert found["field"] == "file_path"


async def test_analyze_of_a_file_that_is_not_media_is_a_400(
    client: Client, library_root: Path
) -> None:
    path = str(library_root / "broken" / "B1.mkv")
    found = await error(
        await client.post("/api/scanner/analyze", params={"file_path": path}), 400
    )
    assert "not a readable media file" in found["detail"]


async def test_system_status_reports_the_real_scanner(client: Client) -> None:
    await ok(
        await client.post(
            "/api/scanner/scheduler/start", json={"cron_expression": "0 2 * * *"}
        )
    )
    report = await ok(await client.get("/api/status"))
    assert report["scanner"] == {
        "scheduler_enabled": True,
        "scheduler_running": True,
        "next_scan_time": "2025-01-13T02:00:00",
        "watcher_enabled": False,
        "watcher_running": False,
    }


async def test_scanner_routes_answer_503_while_the_scanner_is_not_running(
    api: Client,
) -> None:
    for path in ("/api/scanner/scan", "/api/scanner/scheduler/start"):
        response = await api.post(path)
        assert response.status == 503
    assert (await api.get("/api/scanner/status")).status == 503
