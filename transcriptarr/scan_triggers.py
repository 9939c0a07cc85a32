"""What starts a scan besides a request: the scheduler and the file watcher.

:class:`ScanTriggers` supervises them for the ScannerActor: their start, stop
and resumption after the service restarts, the saved configuration and the
settings that remember whether each runs, and the fallback scans of the
watched paths while some folders cannot be watched. The scans themselves are
the service's, passed in as callables. The watcher's thread hands files over
to the event loop the watcher was started on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from pydantic import Field

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.errors import TranscriptarrError
from transcriptarr.library import scan_roots
from transcriptarr.models import StrictBody, validated
from transcriptarr.scanning import normalise_extensions
from transcriptarr.scheduling import (
    MAX_INTERVAL_MINUTES,
    MIN_INTERVAL_MINUTES,
    Clock,
    IntervalSchedule,
    Schedule,
    Scheduler,
    Sleep,
    make_schedule,
)
from transcriptarr.watcher import LibraryWatcher

logger = logging.getLogger(__name__)

WatcherFactory = Callable[..., LibraryWatcher]
ScanPaths = Callable[[list[str] | None, bool | None], Awaitable[object]]
CheckFile = Callable[[str], Awaitable[object]]
SaveState = Callable[[dict[str, Any]], Awaitable[object]]


class SchedulerStart(StrictBody):
    """Body of ``POST /api/scanner/scheduler/start``; unset fields come from
    the settings when each scan runs."""

    enabled: bool = True
    cron_expression: str | None = None
    interval_minutes: float | None = Field(
        default=None,
        ge=MIN_INTERVAL_MINUTES,
        le=MAX_INTERVAL_MINUTES,
        description="Minutes between scans when no cron expression is given",
    )
    paths: list[str] | None = Field(default=None, max_length=1000)
    recursive: bool | None = None


class WatcherStart(StrictBody):
    """Body of ``POST /api/scanner/watcher/start``."""

    enabled: bool = True
    paths: list[str] | None = Field(default=None, max_length=1000)
    recursive: bool | None = None


@dataclass(frozen=True)
class TriggerStatus:
    """The scheduler's and the watcher's part of the scanner status."""

    scheduler_enabled: bool
    scheduler_running: bool
    next_run_s: float | None
    watcher_enabled: bool
    watcher_running: bool
    watched_paths: list[str]
    watcher_warning: str | None


class ScanTriggers:
    """Runs scheduled scans and turns the watcher's files into checks.

    Args:
        settings: The settings service; ``scanner_enabled`` and
            ``watcher_enabled`` record whether each runs.
        save_state: Saves keys of the scanner's persisted state.
        scan: Scans paths (None: the library paths) with a recursion override.
        check_file: Checks one file the watcher saw arrive.
        clock: Epoch seconds.
        sleep: How the schedulers wait.
        watcher_factory: Makes the file watcher.
        tz: Time zone of cron expressions (default: the server's).
    """

    def __init__(
        self,
        settings: ActorProxy,
        *,
        save_state: SaveState,
        scan: ScanPaths,
        check_file: CheckFile,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        watcher_factory: WatcherFactory = LibraryWatcher,
        tz: tzinfo | None = None,
    ) -> None:
        self._settings = settings
        self._save_state = save_state
        self._scan = scan
        self._check_file = check_file
        self._clock = clock
        self._watcher_factory = watcher_factory
        self._tz = tz
        self._scheduler = Scheduler(
            self._scheduled_scan, clock=clock, sleep=sleep, name="scheduled scans"
        )
        self._fallback = Scheduler(
            self._fallback_scan, clock=clock, sleep=sleep, name="fallback scans"
        )
        self._scheduler_config = SchedulerStart()
        self._scheduler_enabled = False
        self._watcher: LibraryWatcher | None = None
        self._watcher_enabled = False
        self._fallback_minutes = 360.0
        self._rescan_pending = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def resume(self, state: dict[str, Any]) -> None:
        """Restart what the settings say ran, with its saved configuration."""
        values = await self._settings.values()
        if values.get("scanner_enabled"):
            try:
                config = validated(SchedulerStart, state.get("scheduler"))
                self._run_scheduler(config, values)
            except TranscriptarrError as exc:
                logger.error("cannot resume the scheduler: %s", exc.detail)
        if values.get("watcher_enabled"):
            try:
                watcher = validated(WatcherStart, state.get("watcher"))
                await self._run_watcher(watcher, values)
            except TranscriptarrError as exc:
                logger.error("cannot resume the file watcher: %s", exc.detail)

    async def close(self) -> None:
        """Stop the schedulers, the watcher and the checks it started."""
        await self._scheduler.stop()
        await self._fallback.stop()
        await self._stop_watcher()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # Scheduler --------------------------------------------------------------

    async def start_scheduler(
        self, body: SchedulerStart | dict[str, Any] | None
    ) -> str:
        """Start scheduled scans (or save a disabled configuration).

        Returns:
            The message the REST API answers with.
        """
        config = validated(SchedulerStart, body)
        values = await self._settings.values()
        if config.paths:
            scan_roots(config.paths, values)
        if not config.enabled:
            await self._scheduler.stop()
            await self._save_scheduler(config, enabled=False)
            return "Scheduler configuration saved; the scheduler is disabled"
        schedule = self._run_scheduler(config, values)
        await self._save_scheduler(config, enabled=True)
        await self._fallback.stop()
        return f"Scheduler started successfully ({schedule.describe()})"

    async def stop_scheduler(self) -> str:
        """Stop scheduled scans and record them as disabled."""
        await self._scheduler.stop()
        await self._save_scheduler(self._scheduler_config, enabled=False)
        self._ensure_fallback()
        return "Scheduler stopped successfully"

    def _run_scheduler(
        self, config: SchedulerStart, values: dict[str, Any]
    ) -> Schedule:
        cron = config.cron_expression
        interval = config.interval_minutes
        if cron is None and interval is None:
            cron = values.get("scanner_cron_expression") or None
            interval = float(values.get("scanner_interval_minutes") or 0)
        schedule = make_schedule(cron, interval, anchor_s=self._clock(), tz=self._tz)
        self._scheduler.start(schedule)
        self._scheduler_config = config
        self._scheduler_enabled = True
        return schedule

    async def _save_scheduler(self, config: SchedulerStart, *, enabled: bool) -> None:
        self._scheduler_config = config
        self._scheduler_enabled = enabled
        await self._save_state({"scheduler": config.model_dump()})
        await self._set_setting("scanner_enabled", enabled)

    async def _scheduled_scan(self) -> None:
        config = self._scheduler_config
        await self._scan(config.paths, config.recursive)

    async def _fallback_scan(self) -> None:
        if self._watcher is not None:
            await self._scan(self._watcher.watched_paths, None)

    # Watcher ----------------------------------------------------------------

    async def start_watcher(self, body: WatcherStart | dict[str, Any] | None) -> str:
        """Start the file watcher (or save a disabled configuration).

        Raises:
            InvalidInput: No paths given and no library paths configured.
        """
        config = validated(WatcherStart, body)
        values = await self._settings.values()
        if not config.enabled:
            await self._stop_watcher()
            await self._save_watcher(config, enabled=False)
            return "File watcher configuration saved; the watcher is disabled"
        await self._run_watcher(config, values)
        await self._save_watcher(config, enabled=True)
        return "File watcher started successfully"

    async def stop_watcher(self) -> str:
        """Stop the file watcher and record it as disabled."""
        await self._stop_watcher()
        await self._save_watcher(None, enabled=False)
        return "File watcher stopped successfully"

    async def _run_watcher(self, config: WatcherStart, values: dict[str, Any]) -> None:
        roots = scan_roots(config.paths, values)
        recursive = config.recursive
        if recursive is None:
            recursive = bool(values.get("scanner_recursive", True))
        await self._stop_watcher()
        loop = asyncio.get_running_loop()

        def on_file(path: Path) -> None:
            loop.call_soon_threadsafe(self._on_new_file, path)

        def on_overflow() -> None:
            loop.call_soon_threadsafe(self._on_overflow)

        watcher = self._watcher_factory(
            roots,
            extensions=normalise_extensions(values.get("media_extensions") or []),
            stable_s=float(values.get("watcher_stable_s", 5)),
            on_file=on_file,
            on_overflow=on_overflow,
            recursive=recursive,
        )
        self._fallback_minutes = float(values.get("scanner_interval_minutes") or 360)
        # Set before the thread starts: its first events may reach this loop
        # before the start returns.
        self._watcher = watcher
        await asyncio.to_thread(watcher.start)
        self._watcher_enabled = True
        self._ensure_fallback()

    async def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)
        await self._fallback.stop()

    async def _save_watcher(
        self, config: WatcherStart | None, *, enabled: bool
    ) -> None:
        self._watcher_enabled = enabled
        if config is not None:
            await self._save_state({"watcher": config.model_dump()})
        await self._set_setting("watcher_enabled", enabled)

    def _on_new_file(self, path: Path) -> None:
        self._ensure_fallback()
        self._spawn(self._check_file(str(path)))

    def _on_overflow(self) -> None:
        """Events were lost: rescan everything watched, once at a time."""
        if self._rescan_pending or self._watcher is None:
            return
        self._rescan_pending = True
        self._spawn(self._overflow_rescan(self._watcher.watched_paths))

    async def _overflow_rescan(self, paths: list[str]) -> None:
        try:
            await self._scan(paths, None)
        finally:
            self._rescan_pending = False

    def _ensure_fallback(self) -> None:
        """Run periodic scans of the watched paths while some folders cannot be
        watched and no scheduler runs."""
        watcher = self._watcher
        needed = (
            watcher is not None
            and watcher.watch_limit is not None
            and not self._scheduler.running
        )
        if needed and not self._fallback.running:
            schedule = IntervalSchedule(self._fallback_minutes, self._clock())
            self._fallback.start(schedule)

    def _spawn(self, work: Awaitable[object]) -> None:
        task = asyncio.get_running_loop().create_task(_logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Status -----------------------------------------------------------------

    def status(self) -> TriggerStatus:
        """Where the scheduler and the watcher stand."""
        self._ensure_fallback()
        watcher = self._watcher
        warning = None
        if watcher is not None:
            limit = watcher.watch_limit
            warning = limit.message() if limit is not None else watcher.error
        return TriggerStatus(
            scheduler_enabled=self._scheduler_enabled,
            scheduler_running=self._scheduler.running,
            next_run_s=self._scheduler.next_run_s or self._fallback.next_run_s,
            watcher_enabled=self._watcher_enabled,
            watcher_running=watcher is not None and watcher.running,
            watched_paths=watcher.watched_paths if watcher is not None else [],
            watcher_warning=warning,
        )

    async def _set_setting(self, key: str, enabled: bool) -> None:
        """Keep the ``scanner_enabled``/``watcher_enabled`` settings in step, so
        whether each runs survives a restart."""
        try:
            await self._settings.update(key, "true" if enabled else "false")
        except TranscriptarrError as exc:
            logger.error("cannot record %s: %s", key, exc.detail)


async def _logged(work: Awaitable[object]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except TranscriptarrError as exc:
        logger.warning("background scan work failed: %s", exc.detail)
    except Exception:
        logger.exception("background scan work failed")
