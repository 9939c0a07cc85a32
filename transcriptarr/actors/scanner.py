"""The ScannerActor's logic: scan rules, scans and the scanner's status.

The scan itself is :class:`~transcriptarr.library.LibraryScanner`'s, and the
scheduler and the watcher are :class:`~transcriptarr.scan_triggers.ScanTriggers`'.
This actor owns what surrounds them: the rules' REST operations, the one lock
that keeps manual, scheduled and watcher-triggered scans from overlapping, the
scan counts, and the status the REST API reports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from transcriptarr.actors.lifecycle import ensure_started
from transcriptarr.actors.proxy import ActorProxy, resolve_actor
from transcriptarr.detection import LanguageDetector, WhisperLanguageDetector
from transcriptarr.errors import InvalidInput, NotFound
from transcriptarr.library import (
    LibraryScanner,
    ScanResult,
    ScanSettings,
    resolve_request_path,
    scan_roots,
)
from transcriptarr.media.probe import probe
from transcriptarr.models import StrictBody, invalid_input, iso_utc, validated
from transcriptarr.rules import ScanRule, ScanRuleCreate, ScanRuleUpdate
from transcriptarr.scan_triggers import (
    ScanTriggers,
    SchedulerStart,
    WatcherFactory,
    WatcherStart,
)
from transcriptarr.scanning import candidate_for, normalise_extensions
from transcriptarr.scheduling import Clock, Sleep
from transcriptarr.store import db
from transcriptarr.store.scanner import ScannerStore
from transcriptarr.watcher import LibraryWatcher

logger = logging.getLogger(__name__)


class ScanRequest(StrictBody):
    """Body of ``POST /api/scanner/scan``."""

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
        self._triggers = ScanTriggers(
            self._settings,
            save_state=self._save_state,
            scan=self._background_scan,
            check_file=self.check_file,
            clock=clock,
            sleep=sleep,
            watcher_factory=watcher_factory,
            tz=tz,
        )
        self._total_scans = 0
        self._last_scan_s: float | None = None
        self._scan_lock = asyncio.Lock()
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
        await self._triggers.resume(state)

    async def close(self) -> None:
        """Stop the scheduler, the watcher and pending work; close the store."""
        await self._triggers.close()
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

    async def _save_state(self, state: dict[str, Any]) -> None:
        await self.store.set_state(state)

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
        rule = await self.store.insert_rule(validated(ScanRuleCreate, body))
        logger.info("scan rule %d created name=%s", rule.id, rule.name)
        return rule

    @ensure_started
    async def update_rule(
        self, rule_id: int, body: ScanRuleUpdate | dict[str, Any]
    ) -> ScanRule:
        update = validated(ScanRuleUpdate, body)
        current = await self.get_rule(rule_id)
        try:
            merged = update.apply(current.as_create())
        except ValidationError as exc:
            raise invalid_input(exc) from exc
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

    # Scheduler and watcher ------------------------------------------------

    @ensure_started
    async def start_scheduler(
        self, body: SchedulerStart | dict[str, Any] | None = None
    ) -> str:
        """Start scheduled scans (or save a disabled configuration).

        Returns:
            The message the REST API answers with.
        """
        return await self._triggers.start_scheduler(body)

    @ensure_started
    async def stop_scheduler(self) -> str:
        return await self._triggers.stop_scheduler()

    @ensure_started
    async def start_watcher(
        self, body: WatcherStart | dict[str, Any] | None = None
    ) -> str:
        """Start the file watcher.

        Raises:
            InvalidInput: No paths given and no library paths configured.
        """
        return await self._triggers.start_watcher(body)

    @ensure_started
    async def stop_watcher(self) -> str:
        return await self._triggers.stop_watcher()

    # Status -----------------------------------------------------------------

    @ensure_started
    async def status(self) -> dict[str, Any]:
        """``GET /api/scanner/status``."""
        triggers = self._triggers.status()
        return ScannerStatus(
            scheduler_enabled=triggers.scheduler_enabled,
            scheduler_running=triggers.scheduler_running,
            next_scan_time=_iso(triggers.next_run_s),
            watcher_enabled=triggers.watcher_enabled,
            watcher_running=triggers.watcher_running,
            watched_paths=triggers.watched_paths,
            last_scan_time=_iso(self._last_scan_s),
            total_scans=self._total_scans,
            scan_in_progress=self._scan_lock.locked(),
            watcher_warning=triggers.watcher_warning,
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
