"""The scanner's scheduler and watcher controls, on a clock moved by hand."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.scanner_library import (
    FIXTURES,
    RULES,
    FakeDetector,
    ManualTime,
    build_library,
)
from tests.unit.test_scanner_watcher import Event, FakeInotify
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService
from transcriptarr.errors import InvalidInput, NotFound
from transcriptarr.watcher import LibraryWatcher

WAIT_S = 20.0
ScannerFactory = Callable[..., Awaitable[ScannerService]]


@pytest.fixture
def manual_time() -> ManualTime:
    return ManualTime("2025-01-12T10:00:00")


@pytest.fixture
async def make_scanner(
    db_path: Path,
    board: JobBoard,
    settings_service: SettingsService,
    manual_time: ManualTime,
) -> AsyncIterator[ScannerFactory]:
    made: list[ScannerService] = []

    async def make(**overrides: Any) -> ScannerService:
        options: dict[str, Any] = {
            "queue": board,
            "settings": settings_service,
            "detector": FakeDetector(),
            "clock": manual_time.clock,
            "sleep": manual_time.sleep,
            "tz": UTC,
        }
        options.update(overrides)
        service = ScannerService(db_path, **options)
        made.append(service)
        await service.start()
        return service

    yield make
    for service in made:
        await service.close()


@pytest.fixture
async def scanner(make_scanner: Callable[..., Any]) -> ScannerService:
    service: ScannerService = await make_scanner()
    return service


@pytest.fixture
async def library_root(tmp_path: Path, settings_service: SettingsService) -> Path:
    root = build_library(tmp_path / "library")
    await settings_service.update("library_paths", str(root))
    return root


async def wait_until(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def job_count(board: JobBoard) -> int:
    return (await board.stats()).total_jobs


# Scheduler ------------------------------------------------------------------


async def test_scheduler_starts_on_the_settings_interval(
    scanner: ScannerService, manual_time: ManualTime
) -> None:
    message = await scanner.start_scheduler()
    assert message == "Scheduler started successfully (every 360 minutes)"
    status = await scanner.status()
    assert status["scheduler_enabled"] is True
    assert status["scheduler_running"] is True
    assert status["next_scan_time"] == "2025-01-12T16:00:00"


async def test_scheduler_starts_on_a_cron_expression_from_the_request(
    scanner: ScannerService,
) -> None:
    message = await scanner.start_scheduler({"cron_expression": "0 2 * * *"})
    assert message == "Scheduler started successfully (cron: 0 2 * * *)"
    assert (await scanner.status())["next_scan_time"] == "2025-01-13T02:00:00"


async def test_scheduler_uses_the_cron_expression_setting(
    scanner: ScannerService, settings_service: SettingsService
) -> None:
    await settings_service.update("scanner_cron_expression", "30 4 * * 1")
    message = await scanner.start_scheduler()
    assert message == "Scheduler started successfully (cron: 30 4 * * 1)"
    assert (await scanner.status())["next_scan_time"] == "2025-01-13T04:30:00"


async def test_scheduler_interval_from_the_request_wins_over_settings(
    scanner: ScannerService, settings_service: SettingsService
) -> None:
    await settings_service.update("scanner_cron_expression", "30 4 * * 1")
    message = await scanner.start_scheduler({"interval_minutes": 15})
    assert message == "Scheduler started successfully (every 15 minutes)"


async def test_scheduler_refuses_an_invalid_cron_expression(
    scanner: ScannerService,
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await scanner.start_scheduler({"cron_expression": "every night"})
    assert raised.value.field == "cron_expression"
    assert (await scanner.status())["scheduler_running"] is False


async def test_scheduler_refuses_paths_that_do_not_exist(
    scanner: ScannerService, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        await scanner.start_scheduler({"paths": [str(tmp_path / "gone")]})


async def test_scheduled_scan_fires_on_time(
    scanner: ScannerService,
    board: JobBoard,
    manual_time: ManualTime,
    library_root: Path,
) -> None:
    for body in RULES:
        await scanner.create_rule(body)
    await scanner.start_scheduler({"interval_minutes": 60})

    await manual_time.advance(59 * 60)
    assert (await scanner.status())["total_scans"] == 0

    await manual_time.advance(60)
    await wait_until(lambda: _total_scans_is(scanner, 1), "the first scheduled scan")
    status = await scanner.status()
    assert status["last_scan_time"] == "2025-01-12T11:00:00"
    assert status["next_scan_time"] == "2025-01-12T12:00:00"
    assert await job_count(board) > 0


async def _total_scans_is(scanner: ScannerService, count: int) -> bool:
    return bool((await scanner.status())["total_scans"] == count)


async def test_scheduled_scan_of_the_request_paths(
    scanner: ScannerService, manual_time: ManualTime, library_root: Path
) -> None:
    movies = library_root / "movies"
    await scanner.start_scheduler({"interval_minutes": 5, "paths": [str(movies)]})
    await manual_time.advance(5 * 60)
    await wait_until(lambda: _total_scans_is(scanner, 1), "the scheduled scan")
    index = await scanner.store.index_under(str(library_root))
    assert all(path.startswith(str(movies)) for path in index)


async def test_scheduler_stops(
    scanner: ScannerService, manual_time: ManualTime
) -> None:
    await scanner.start_scheduler()
    assert await scanner.stop_scheduler() == "Scheduler stopped successfully"
    status = await scanner.status()
    assert status["scheduler_enabled"] is False
    assert status["scheduler_running"] is False
    assert status["next_scan_time"] is None
    await manual_time.advance(24 * 3600)
    assert (await scanner.status())["total_scans"] == 0


async def test_running_scheduler_is_restored_after_a_restart(
    make_scanner: Callable[..., Any], settings_service: SettingsService
) -> None:
    first: ScannerService = await make_scanner()
    await first.start_scheduler({"cron_expression": "0 2 * * *"})
    await first.close()
    assert await settings_service.value("scanner_enabled") is True

    second: ScannerService = await make_scanner()
    status = await second.status()
    assert status["scheduler_running"] is True
    assert status["next_scan_time"] == "2025-01-13T02:00:00"


async def test_stopped_scheduler_stays_stopped_after_a_restart(
    make_scanner: Callable[..., Any], settings_service: SettingsService
) -> None:
    first: ScannerService = await make_scanner()
    await first.start_scheduler()
    await first.stop_scheduler()
    await first.close()
    assert await settings_service.value("scanner_enabled") is False

    second: ScannerService = await make_scanner()
    assert (await second.status())["scheduler_running"] is False


async def test_scheduler_enabled_in_settings_starts_with_the_service(
    make_scanner: Callable[..., Any], settings_service: SettingsService
) -> None:
    await settings_service.update("scanner_enabled", "true")
    await settings_service.update("scanner_interval_minutes", "30")
    scanner: ScannerService = await make_scanner()
    status = await scanner.status()
    assert status["scheduler_running"] is True
    assert status["next_scan_time"] == "2025-01-12T10:30:00"


async def test_disabled_configuration_is_saved_without_running(
    scanner: ScannerService,
) -> None:
    message = await scanner.start_scheduler({"enabled": False, "interval_minutes": 5})
    assert message == "Scheduler configuration saved; the scheduler is disabled"
    assert (await scanner.status())["scheduler_running"] is False


async def test_status_summary_has_the_status_report_fields(
    scanner: ScannerService,
) -> None:
    await scanner.start_scheduler()
    assert await scanner.summary() == {
        "scheduler_enabled": True,
        "scheduler_running": True,
        "next_scan_time": "2025-01-12T16:00:00",
        "watcher_enabled": False,
        "watcher_running": False,
    }


# Watcher ----------------------------------------------------------------------


async def test_watcher_without_library_paths_is_refused(
    scanner: ScannerService,
) -> None:
    with pytest.raises(InvalidInput, match=r"^No library paths configured$"):
        await scanner.start_watcher()
    assert (await scanner.status())["watcher_running"] is False


async def test_watcher_turns_a_copied_file_into_one_job(
    scanner: ScannerService,
    board: JobBoard,
    settings_service: SettingsService,
    tmp_path: Path,
) -> None:
    library = tmp_path / "watched"
    library.mkdir()
    await settings_service.update("watcher_stable_s", "0")
    await scanner.create_rule({"name": "eng", "action": {"target_language": "eng"}})
    message = await scanner.start_watcher({"paths": [str(library)]})
    assert message == "File watcher started successfully"
    status = await scanner.status()
    assert status["watcher_enabled"] is True
    assert status["watcher_running"] is True
    assert status["watched_paths"] == [str(library)]

    shutil.copyfile(FIXTURES / "english.mkv", library / "new.mkv")

    async def one_job() -> bool:
        return await job_count(board) == 1

    await wait_until(one_job, "the job of the copied file")
    assert await scanner.stop_watcher() == "File watcher stopped successfully"
    status = await scanner.status()
    assert status["watcher_running"] is False
    assert status["watcher_enabled"] is False
    assert status["watched_paths"] == []


async def test_enabled_watcher_is_restored_after_a_restart(
    make_scanner: Callable[..., Any], library_root: Path
) -> None:
    first: ScannerService = await make_scanner()
    await first.start_watcher({"paths": [str(library_root / "movies")]})
    await first.close()

    second: ScannerService = await make_scanner()
    status = await second.status()
    assert status["watcher_running"] is True
    assert status["watched_paths"] == [str(library_root / "movies")]


def _fake_watcher(inotify: FakeInotify, *args: Any, **kwargs: Any) -> LibraryWatcher:
    return LibraryWatcher(*args, inotify_factory=lambda: inotify, **kwargs)


async def test_watch_limit_is_reported_and_covered_by_periodic_scans(
    make_scanner: Callable[..., Any], library_root: Path, manual_time: ManualTime
) -> None:
    factory = partial(_fake_watcher, FakeInotify(max_watches=1))
    scanner: ScannerService = await make_scanner(watcher_factory=factory)
    await scanner.start_watcher()
    status = await scanner.status()
    assert "fs.inotify.max_user_watches" in status["watcher_warning"]
    assert status["scheduler_running"] is False
    assert status["next_scan_time"] == "2025-01-12T16:00:00"

    await manual_time.advance(360 * 60)
    await wait_until(lambda: _total_scans_is(scanner, 1), "the periodic scan")


async def test_queue_overflow_triggers_a_full_rescan(
    make_scanner: Callable[..., Any], library_root: Path
) -> None:
    overflow = Event(-1, 0x4000, 0, "")
    factory = partial(_fake_watcher, FakeInotify(100, [overflow]))
    scanner: ScannerService = await make_scanner(watcher_factory=factory)
    await scanner.start_watcher()
    await wait_until(lambda: _total_scans_is(scanner, 1), "the rescan")
    assert (await scanner.status())["watcher_warning"] is None
