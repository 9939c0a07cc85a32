"""Job pages cached in a front-end process, refreshed when any job changes.

The job board numbers its changes. Each front end keeps one long poll open on
it (``wait_for_change``, as Ray Serve's long-poll client does) and keeps the
JSON of the pages it served, tagged with the version they were read at.

- A page read at the newest announced version is served from memory.
- A page read before it is served as it is while it is under
  ``MAX_STALE_S`` old, and refreshed in the background; older, the request
  waits for a fresh read. Progress is written behind by about a second too,
  so a page is never staler than the board's own record.
- Concurrent requests for one page share one read of the board.
- A write made through this process drops every page, so a client always
  reads its own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from aiohttp import web

from transcriptarr.actors.proxy import ActorProxy

logger = logging.getLogger(__name__)

LONG_POLL_TIMEOUT_S = 30.0
RETRY_AFTER_ERROR_S = 1.0
MAX_CACHED_PAGES = 256
MAX_STALE_S = 1.0

Fetch = Callable[[], Awaitable[tuple[int, bytes]]]


@dataclass(slots=True)
class _Page:
    version: int
    body: bytes
    fetched_at_s: float


def _log_failed_read(task: asyncio.Task[bytes]) -> None:
    """Retrieve the error of a background refresh nobody awaited."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("refreshing a job page failed: %s", task.exception())


class PageCache:
    """Pages of ``GET /api/jobs``; see the module docstring."""

    def __init__(
        self,
        queue: ActorProxy,
        *,
        max_pages: int = MAX_CACHED_PAGES,
        max_stale_s: float = MAX_STALE_S,
    ) -> None:
        self._queue = queue
        self._max_pages = max_pages
        self._max_stale_s = max_stale_s
        self._pages: OrderedDict[Hashable, _Page] = OrderedDict()
        self._reads: dict[Hashable, asyncio.Task[bytes]] = {}
        self._latest_version: int | None = None
        # Bumped by invalidate(): a read begun before it must not be kept.
        self._epoch = 0
        self._task: asyncio.Task[None] | None = None

    async def page(self, key: Hashable, fetch: Fetch) -> bytes:
        """The page ``key``: from memory when allowed, else through ``fetch``."""
        if self._latest_version is None:
            _, body = await fetch()
            return body
        cached = self._pages.get(key)
        if cached is not None:
            self._pages.move_to_end(key)
            if cached.version == self._latest_version:
                return cached.body
            if time.monotonic() - cached.fetched_at_s <= self._max_stale_s:
                self._read(key, fetch)
                return cached.body
        return await self._read(key, fetch)

    def invalidate(self) -> None:
        """Drop every page: this process just changed a job."""
        self._pages.clear()
        self._reads.clear()
        self._epoch += 1

    def _read(self, key: Hashable, fetch: Fetch) -> asyncio.Task[bytes]:
        """The one read of ``key`` in flight, started if there is none."""
        running = self._reads.get(key)
        if running is None:
            running = asyncio.create_task(self._read_and_keep(key, fetch))
            running.add_done_callback(_log_failed_read)
            self._reads[key] = running
        return running

    async def _read_and_keep(self, key: Hashable, fetch: Fetch) -> bytes:
        epoch = self._epoch
        try:
            version, body = await fetch()
        finally:
            if self._reads.get(key) is asyncio.current_task():
                del self._reads[key]
        if epoch == self._epoch:
            self._keep(key, version, body)
        return body

    def _keep(self, key: Hashable, version: int, body: bytes) -> None:
        if self._latest_version is None or version < self._latest_version:
            return
        self._latest_version = version
        self._pages[key] = _Page(version, body, time.monotonic())
        self._pages.move_to_end(key)
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)

    async def follow(self) -> None:
        """Long-poll the board's version until cancelled."""
        seen = -1
        while True:
            try:
                version: int = await self._queue.wait_for_change(
                    seen, LONG_POLL_TIMEOUT_S
                )
            except Exception as exc:
                # Without a live long poll nothing may be served from memory.
                self._latest_version = None
                self._pages.clear()
                logger.warning("job version long poll failed: %s", exc)
                await asyncio.sleep(RETRY_AFTER_ERROR_S)
                continue
            self._latest_version = max(version, self._latest_version or 0)
            seen = version

    async def start(self, app: web.Application) -> None:
        self._task = asyncio.create_task(self.follow())

    async def stop(self, app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
