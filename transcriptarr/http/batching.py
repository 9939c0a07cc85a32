"""Coalescing the job submissions of one front-end process.

Under load, many ``POST /api/jobs`` arrive while one call to the job board is
in flight. Instead of one actor call each, they wait for that call to return
and then travel together in one ``submit_many``, which the board commits in one
transaction. A lone request goes out at once, so light load adds no latency.
"""

from __future__ import annotations

import asyncio
import logging

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import duplicate_job
from transcriptarr.models import Job, JobCreate

logger = logging.getLogger(__name__)

MAX_BATCH_JOBS = 256


class SubmitBatcher:
    """Sends concurrent submissions to the job board in batches."""

    def __init__(self, queue: ActorProxy, *, max_batch: int = MAX_BATCH_JOBS) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._pending: list[tuple[JobCreate, asyncio.Future[Job | None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, create: JobCreate) -> Job:
        """Queue one job; answers once it is durable.

        Raises:
            Conflict: the file already has a queued or processing job.
        """
        future: asyncio.Future[Job | None] = asyncio.get_running_loop().create_future()
        self._pending.append((create, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        job = await future
        if job is None:
            raise duplicate_job(create)
        return job

    async def _send_all(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                jobs = await self._queue.submit_many([create for create, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), job in zip(batch, jobs, strict=True):
                if not future.done():
                    future.set_result(job)
