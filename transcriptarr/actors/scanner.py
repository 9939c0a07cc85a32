"""The ScannerActor's logic: scan rules, scans, the scheduler and the watcher.

The scan itself is :class:`~transcriptarr.library.LibraryScanner`'s; this
actor owns what surrounds it: the rules' REST operations, the one lock that
keeps manual, scheduled and watcher-triggered scans from overlapping, the
scheduler and the watcher (and their restart after the service restarts), and
the status the REST API reports. The watcher's thread hands files over to
this actor's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from transcriptarr.actors.lifecycle import ensure_started
from transcriptarr.actors.proxy import ActorProxy, resolve_actor
from transcriptarr.detection import LanguageDetector, WhisperLanguageDetector
from transcriptarr.errors import InvalidInput, NotFound, TranscriptarrError
from transcriptarr.library import (
    LibraryScanner,
    ScanResult,
    ScanSettings,
    resolve_request_path,
    scan_roots,
)
from transcriptarr.media.probe import probe
from transcriptarr.models import StrictBody, iso_utc
from transcriptarr.rules import ScanRule, ScanRuleCreate, ScanRuleUpdate
from transcriptarr.scanning import candidate_for, normalise_extensions
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
from transcriptarr.store import db
from transcriptarr.store.scanner import ScannerStore
from transcriptarr.watcher import LibraryWatcher

logger = logging.getLogger(__name__)

WatcherFactory = Callable[..., LibraryWatcher]


class ScanRequest(StrictBody):
    """Body of ``POST /api/scanner/scan``."""

    paths: list[str] | None = Field(default=None, max_length=1000)
    recursive: bool | None = None


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


class ScannerStatus(BaseModel):
    """``GET /api/scanner/status``: the spec's fields, then two of ours."""

    scheduler_enabled: bool
    scheduler_running: bool
    next_scan_time: str | None
    watcher_enabled: bool
    watcher_running: bool
    watched_paths: list[str]
    last_scan_time: str | None
    total_scans: int
    scan_in_progress: bool = False
    watcher_warning: str | None = None


def _iso(moment_s: float | None) -> str | None:
    if moment_s is None:
        return None
    return iso_utc(datetime.fromtimestamp(moment_s, UTC))


_M = TypeVar("_M", bound=BaseModel)


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return InvalidInput(f"{field}: {first['msg']}", field=field)


def _validated(model: type[_M], body: BaseModel | dict[str, Any] | None) -> _M:
    """``body`` as ``model``; a bad value is a 400 naming the field."""
    if isinstance(body, model):
        return body
    data = body.model_dump() if isinstance(body, BaseModel) else body or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _proxy(target: Any) -> ActorProxy:
    """A proxy of an actor given by name, handle or plain object."""
    if isinstance(target, ActorProxy):
        return target
    return ActorProxy(resolve_actor(target))


class ScannerService:
    """Scans the library and turns what lacks subtitles into jobs.

    Args:
        db_path: The SQLite file (shared with the other actors).
        queue: The job board (a Ray handle or the plain object).
        settings: The settings service (a Ray handle or the plain object).
        models_dir: Where the language-detection model is found.
        detector: Language detection (default: Whisper ``base``).
        clock: Epoch seconds, for the scheduler and the scan times.
        sleep: How the scheduler waits.
        probe_threads: Threads that probe files in parallel.
        watcher_factory: Makes the file watcher (tests pass a fake inotify).
        tz: Time zone of cron expressions (default: the server's).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        queue: Any,
        settings: Any,
        models_dir: str | Path | None = None,
        detector: LanguageDetector | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        probe_threads: int | None = None,
        watcher_factory: WatcherFactory = LibraryWatcher,
        tz: tzinfo | None = None,
    ) -> None:
        self._db_path = Path(db_path)
        self._queue = _proxy(queue)
        self._settings = _proxy(settings)
        models = Path(models_dir) if models_dir else self._db_path.parent / "models"
        self._detector = detector or WhisperLanguageDetector(models)
        self._clock = clock
        self._probe_threads = probe_threads or min(4, os.cpu_count() or 1)
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
        self._total_scans = 0
        self._last_scan_s: float | None = None
        self._scan_lock = asyncio.Lock()
        self._rescan_pending = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._library: LibraryScanner | None = None
        self._store: ScannerStore | None = None
        self._conn: Any = None
        self.start_lock = asyncio.Lock()

    # Lifecycle --------------------------------------------------------------

    @property
    def is_started(self) -> bool:
        return self._store is not None

    async def start(self) -> None:
        """Open the store and resume the scheduler and watcher if enabled."""
        if self._store is not None:
            return
        self._conn = await db.connect(self._db_path)
        self._store = ScannerStore(self._conn)
        self._pool = ThreadPoolExecutor(
            self._probe_threads, thread_name_prefix="transcriptarr-probe"
        )
        self._library = LibraryScanner(
            self._store, self._queue, self._detector, self._pool, self._clock
        )
        state = await self._store.state()
        self._total_scans = int(state.get("total_scans", 0))
        self._last_scan_s = state.get("last_scan_s")
        await self._resume(state)

    async def close(self) -> None:
        """Stop the scheduler, the watcher and pending work; close the store."""
        await self._scheduler.stop()
        await self._fallback.stop()
        await self._stop_watcher()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._conn is not None:
            await self._conn.close()
        self._pool = self._library = self._store = self._conn = None

    @property
    def store(self) -> ScannerStore:
        if self._store is None:
            raise RuntimeError("ScannerService.start() was not awaited")
        return self._store

    @property
    def library(self) -> LibraryScanner:
        if self._library is None:
            raise RuntimeError("ScannerService.start() was not awaited")
        return self._library

    async def _resume(self, state: dict[str, Any]) -> None:
        values = await self._settings.values()
        if values.get("scanner_enabled"):
            try:
                config = _validated(SchedulerStart, state.get("scheduler"))
                self._run_scheduler(config, values)
            except TranscriptarrError as exc:
                logger.error("cannot resume the scheduler: %s", exc.detail)
        if values.get("watcher_enabled"):
            try:
                watcher = _validated(WatcherStart, state.get("watcher"))
                await self._run_watcher(watcher, values)
            except TranscriptarrError as exc:
                logger.error("cannot resume the file watcher: %s", exc.detail)

    # Scan rules -------------------------------------------------------------

    @ensure_started
    async def list_rules(self, enabled_only: bool = False) -> list[ScanRule]:
        return await self.store.list_rules(enabled_only=enabled_only)

    @ensure_started
    async def get_rule(self, rule_id: int) -> ScanRule:
        rule = await self.store.get_rule(rule_id)
        if rule is None:
            raise NotFound(f"Scan rule {rule_id} not found")
        return rule

    @ensure_started
    async def create_rule(self, body: ScanRuleCreate | dict[str, Any]) -> ScanRule:
        rule = await self.store.insert_rule(_validated(ScanRuleCreate, body))
        logger.info("scan rule %d created name=%s", rule.id, rule.name)
        return rule

    @ensure_started
    async def update_rule(
        self, rule_id: int, body: ScanRuleUpdate | dict[str, Any]
    ) -> ScanRule:
        update = _validated(ScanRuleUpdate, body)
        current = await self.get_rule(rule_id)
        try:
            merged = update.apply(current.as_create())
        except ValidationError as exc:
            raise _invalid(exc) from exc
        return await self._replace_rule(rule_id, merged)

    @ensure_started
    async def toggle_rule(self, rule_id: int) -> ScanRule:
        current = await self.get_rule(rule_id)
        toggled = current.as_create().model_copy(
            update={"enabled": not current.enabled}
        )
        return await self._replace_rule(rule_id, toggled)

    @ensure_started
    async def delete_rule(self, rule_id: int) -> None:
        if not await self.store.delete_rule(rule_id):
            raise NotFound(f"Scan rule {rule_id} not found")
        logger.info("scan rule %d deleted", rule_id)

    async def _replace_rule(self, rule_id: int, rule: ScanRuleCreate) -> ScanRule:
        updated = await self.store.update_rule(rule_id, rule)
        if updated is None:
            raise NotFound(f"Scan rule {rule_id} not found")
        logger.info("scan rule %d updated enabled=%s", rule_id, updated.enabled)
        return updated

    # Scanning ---------------------------------------------------------------

    @ensure_started
    async def scan(
        self, paths: list[str] | None = None, recursive: bool | None = None
    ) -> dict[str, Any]:
        """Scan ``paths`` (default: the library paths) and submit jobs.

        Returns:
            The spec's counts: ``scanned_files``, ``matched_files``,
            ``jobs_created``, ``skipped_files``, ``paths_scanned``.

        Raises:
            InvalidInput: No paths given and none configured; a path given is
                not a directory.
            NotFound: A path given does not exist.
        """
        values = await self._settings.values()
        roots = scan_roots(paths, values)
        result = await self._scan(roots, values, recursive)
        return result.model_dump()

    async def _scan_settings(
        self, values: dict[str, Any], recursive: bool | None
    ) -> ScanSettings:
        rules = await self.store.list_rules(enabled_only=True)
        return ScanSettings.from_values(values, rules, recursive=recursive)

    async def _scan(
        self, roots: list[Path], values: dict[str, Any], recursive: bool | None
    ) -> ScanResult:
        async with self._scan_lock:
            # Read the rules only once this scan's turn has come.
            settings = await self._scan_settings(values, recursive)
            result = await self.library.scan(roots, settings)
            self._total_scans += 1
            self._last_scan_s = self._clock()
            await self.store.set_state(
                {"total_scans": self._total_scans, "last_scan_s": self._last_scan_s}
            )
        return result

    async def _background_scan(
        self, paths: list[str] | None, recursive: bool | None
    ) -> None:
        values = await self._settings.values()
        await self._scan(scan_roots(paths, values), values, recursive)

    @ensure_started
    async def check_file(self, path: str) -> dict[str, Any]:
        """Check one file, as the watcher does once a file has arrived."""
        file_path = resolve_request_path(path, field="file_path")
        values = await self._settings.values()
        extensions = normalise_extensions(values.get("media_extensions") or [])
        if file_path.suffix.lower() not in extensions:
            return ScanResult().model_dump()
        candidate = await asyncio.to_thread(candidate_for, file_path)
        if candidate is None:
            return ScanResult().model_dump()
        async with self._scan_lock:
            settings = await self._scan_settings(values, None)
            result = await self.library.check(candidate, settings)
        logger.info(
            "checked %s matched=%d jobs=%d",
            file_path,
            result.matched_files,
            result.jobs_created,
        )
        return result.model_dump()

    @ensure_started
    async def analyze(self, file_path: str) -> dict[str, Any]:
        """Probe one file: ``POST /api/scanner/analyze``.

        Raises:
            NotFound: No such file.
            InvalidInput: Not a file.
            MediaError: Not readable media.
        """
        path = resolve_request_path(file_path, field="file_path")
        if not path.exists():
            raise NotFound(f"File not found: {file_path}", field="file_path")
        if not path.is_file():
            raise InvalidInput(f"Path is not a file: {file_path}", field="file_path")
        info = await asyncio.to_thread(probe, path)
        return info.to_dict()

    # Scheduler --------------------------------------------------------------

    @ensure_started
    async def start_scheduler(
        self, body: SchedulerStart | dict[str, Any] | None = None
    ) -> str:
        """Start scheduled scans (or save a disabled configuration).

        Returns:
            The message the REST API answers with.
        """
        config = _validated(SchedulerStart, body)
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

    @ensure_started
    async def stop_scheduler(self) -> str:
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
        await self.store.set_state({"scheduler": config.model_dump()})
        await self._set_setting("scanner_enabled", enabled)

    async def _scheduled_scan(self) -> None:
        config = self._scheduler_config
        await self._background_scan(config.paths, config.recursive)

    async def _fallback_scan(self) -> None:
        if self._watcher is not None:
            await self._background_scan(self._watcher.watched_paths, None)

    # Watcher ----------------------------------------------------------------

    @ensure_started
    async def start_watcher(
        self, body: WatcherStart | dict[str, Any] | None = None
    ) -> str:
        """Start the file watcher.

        Raises:
            InvalidInput: No paths given and no library paths configured.
        """
        config = _validated(WatcherStart, body)
        values = await self._settings.values()
        if not config.enabled:
            await self._stop_watcher()
            await self._save_watcher(config, enabled=False)
            return "File watcher configuration saved; the watcher is disabled"
        await self._run_watcher(config, values)
        await self._save_watcher(config, enabled=True)
        return "File watcher started successfully"

    @ensure_started
    async def stop_watcher(self) -> str:
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
            await self.store.set_state({"watcher": config.model_dump()})
        await self._set_setting("watcher_enabled", enabled)

    def _on_new_file(self, path: Path) -> None:
        self._ensure_fallback()
        self._spawn(self.check_file(str(path)))

    def _on_overflow(self) -> None:
        """Events were lost: rescan everything watched, once at a time."""
        if self._rescan_pending or self._watcher is None:
            return
        self._rescan_pending = True
        self._spawn(self._overflow_rescan(self._watcher.watched_paths))

    async def _overflow_rescan(self, paths: list[str]) -> None:
        try:
            await self._background_scan(paths, None)
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

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(_logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Status -----------------------------------------------------------------

    @ensure_started
    async def status(self) -> dict[str, Any]:
        """``GET /api/scanner/status``."""
        self._ensure_fallback()
        watcher = self._watcher
        warning = None
        if watcher is not None:
            limit = watcher.watch_limit
            warning = limit.message() if limit is not None else watcher.error
        return ScannerStatus(
            scheduler_enabled=self._scheduler_enabled,
            scheduler_running=self._scheduler.running,
            next_scan_time=_iso(
                self._scheduler.next_run_s or self._fallback.next_run_s
            ),
            watcher_enabled=self._watcher_enabled,
            watcher_running=watcher is not None and watcher.running,
            watched_paths=watcher.watched_paths if watcher is not None else [],
            last_scan_time=_iso(self._last_scan_s),
            total_scans=self._total_scans,
            scan_in_progress=self._scan_lock.locked(),
            watcher_warning=warning,
        ).model_dump()

    @ensure_started
    async def summary(self) -> dict[str, Any]:
        """The ``scanner`` part of ``/api/status``."""
        status = await self.status()
        keys = (
            "scheduler_enabled",
            "scheduler_running",
            "next_scan_time",
            "watcher_enabled",
            "watcher_running",
        )
        return {key: status[key] for key in keys}

    async def _set_setting(self, key: str, enabled: bool) -> None:
        """Keep the ``scanner_enabled``/``watcher_enabled`` settings in step, so
        whether each runs survives a restart."""
        try:
            await self._settings.update(key, "true" if enabled else "false")
        except TranscriptarrError as exc:
            logger.error("cannot record %s: %s", key, exc.detail)


async def _logged(work: Coroutine[Any, Any, Any]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except TranscriptarrError as exc:
        logger.warning("background scan work failed: %s", exc.detail)
    except Exception:
        logger.exception("background scan work failed")
