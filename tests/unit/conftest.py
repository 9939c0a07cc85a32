"""Unit-test fixtures: real SQLite files, plain actor classes, no Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
import ray
from aiohttp.test_utils import TestClient, TestServer

from tests.clock import FakeClock
from tests.scanner_library import FakeDetector, ManualTime
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard, QueuePolicy
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services


@pytest.fixture(autouse=True)
def _forbid_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never start Ray; integration tests share one cluster."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unit tests must not start Ray")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "transcriptarr.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def board(db_path: Path, clock: FakeClock) -> AsyncIterator[JobBoard]:
    job_board = JobBoard(
        db_path,
        policy=QueuePolicy(max_retries=2, backoff_base_s=10, lease_s=30),
        clock=clock,
    )
    await job_board.start()
    yield job_board
    await job_board.close()


@pytest.fixture
async def settings_service(db_path: Path) -> AsyncIterator[SettingsService]:
    service = SettingsService(db_path)
    await service.start()
    yield service
    await service.close()


@pytest.fixture
async def api(
    board: JobBoard, settings_service: SettingsService
) -> AsyncIterator[TestClient[object, object]]:
    """An HTTP client on the real app, its actors running in-process."""
    services = Services(queue=ActorProxy(board), settings=ActorProxy(settings_service))
    client: TestClient[object, object] = TestClient(TestServer(create_app(services)))
    await client.start_server()
    yield client
    await client.close()


SCANNER_START = "2025-01-12T10:00:00"


@pytest.fixture
async def scanner(
    db_path: Path, board: JobBoard, settings_service: SettingsService
) -> AsyncIterator[ScannerService]:
    """The scanner in-process, on a hand-moved clock and a fake detector."""
    time = ManualTime(SCANNER_START)
    service = ScannerService(
        db_path,
        queue=board,
        settings=settings_service,
        detector=FakeDetector(),
        clock=time.clock,
        sleep=time.sleep,
        tz=UTC,
    )
    await service.start()
    yield service
    await service.close()


def job_body(name: str = "episode.mkv", **overrides: object) -> dict[str, object]:
    """A valid ``POST /api/jobs`` body."""
    body: dict[str, object] = {
        "file_path": f"/media/anime/{name}",
        "file_name": name,
        "target_lang": "spa",
    }
    body.update(overrides)
    return body
