"""The job board: the QueueActor's logic as a plain asyncio class.

The board owns the ``jobs`` table. Submissions are grouped: every submission
that arrives while a commit is in flight joins the next transaction, so one fsync
covers many jobs and each caller still gets its answer only once its job is
durable. Claims are long polls: a claimer with nothing to take waits on a
condition that a submission (or a retry coming due) wakes. Progress is written
behind: leases are renewed in memory at once and flushed to disk about once a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from transcriptarr.actors.lifecycle import ensure_started
from transcriptarr.errors import (
    Conflict,
    InvalidInput,
    LeaseLost,
    NotFound,
    StoreError,
)
from transcriptarr.models import (
    ClaimedJob,
    Job,
    JobCreate,
    JobPage,
    JobResult,
    JobStatus,
    ProgressReport,
    QueueStats,
)
from transcriptarr.store import db
from transcriptarr.store.jobs import JobStore

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

PROGRESS_FLUSH_INTERVAL_S = 1.0
# How long a released worker's id is refused (longer than any claim's wait).
RETIRED_WORKER_S = 120.0
MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Retry and lease settings (``queue_*`` in the settings catalog)."""

    max_retries: int = 3
    backoff_base_s: float = 5.0
    backoff_max_s: float = 600.0
    lease_s: float = 60.0

    def backoff_s(self, retry_count: int) -> float:
        """Delay before attempt ``retry_count + 1``: doubling, capped."""
        exponent = max(retry_count - 1, 0)
        return float(min(self.backoff_base_s * 2**exponent, self.backoff_max_s))


@dataclass(slots=True)
class _Lease:
    lease_id: str
    worker_id: str
    expires_at_s: float


@dataclass(slots=True)
class _PendingSubmit:
    job_id: str
    create: JobCreate
    future: asyncio.Future[Job | None]


class JobBoard:
    """Durable priority queue with leases; see the module docstring."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        policy: QueuePolicy | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._db_path = Path(db_path)
        self._policy = policy or QueuePolicy()
        self._clock = clock
        self._store: JobStore | None = None
        self._connections: list[Any] = []
        self._leases: dict[str, _Lease] = {}
        # Worker id -> when it was released; see release_worker().
        self._retired_workers: dict[str, float] = {}
        # Held across each state transition's write and its in-memory effects,
        # so a transition never reads a status another one is changing.
        self._transitions = asyncio.Lock()
        self._progress: dict[str, tuple[str, ProgressReport]] = {}
        self._pending: list[_PendingSubmit] = []
        self._counts: dict[JobStatus, int] = dict.fromkeys(JobStatus, 0)
        self._work_available = asyncio.Condition()
        self._work_generation = 0
        # Starts from the clock so it still grows after Ray restarts the actor:
        # front ends compare it with the version their cached pages carry.
        self._version = time.time_ns() // 1_000_000
        self._changed = asyncio.Event()
        self._flush_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._due_timer: asyncio.TimerHandle | None = None
        self._started = False
        self.start_lock = asyncio.Lock()

    async def start(self) -> None:
        """Open the store, recover interrupted jobs and start background tasks."""
        if self._started:
            return
        writer = await db.connect(self._db_path)
        reader = await db.connect(self._db_path, readonly=True)
        self._connections = [writer, reader]
        self._store = JobStore(writer, reader)
        queued, failed = await self._store.requeue_all_processing()
        for job in queued:
            _log_transition(job, "requeued after restart")
        for job in failed:
            _log_transition(job, "failed", error=job.error)
        self._counts = await self._store.counts()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._submit_loop()),
            loop.create_task(self._progress_loop()),
            loop.create_task(self._lease_loop()),
        ]
        self._started = True
        await self._schedule_due_wakeup()

    async def close(self) -> None:
        """Flush pending progress and close the database."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._store is not None:
            await self._flush_progress()
        for conn in self._connections:
            await conn.close()
        self._connections = []
        self._store = None
        self._started = False

    @property
    def is_started(self) -> bool:
        return self._started

    def configure(self, policy: QueuePolicy) -> None:
        """Apply new retry and lease settings to future transitions."""
        self._policy = policy

    @property
    def store(self) -> JobStore:
        if self._store is None:
            raise StoreError("The job board is not started")
        return self._store

    # Submission -------------------------------------------------------------

    @ensure_started
    async def submit(self, create: JobCreate | dict[str, Any]) -> Job:
        """Queue a job; answers once it is committed.

        Raises:
            Conflict: a queued or processing job exists for the same file and
                target language.
        """
        body = _as_create(create)
        job = (await self._enqueue([body]))[0]
        if job is None:
            raise duplicate_job(body)
        return job

    @ensure_started
    async def submit_many(
        self, creates: list[JobCreate | dict[str, Any]]
    ) -> list[Job | None]:
        """Queue several jobs; None in place of each duplicate."""
        return await self._enqueue([_as_create(item) for item in creates])

    async def _enqueue(self, bodies: list[JobCreate]) -> list[Job | None]:
        loop = asyncio.get_running_loop()
        pending = [
            _PendingSubmit(uuid.uuid4().hex, body, loop.create_future())
            for body in bodies
        ]
        self._pending.extend(pending)
        self._flush_wakeup.set()
        return list(await asyncio.gather(*(item.future for item in pending)))

    async def _submit_loop(self) -> None:
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_PendingSubmit]) -> None:
        try:
            jobs = await self.store.insert_many(
                [(item.job_id, item.create) for item in batch],
                max_retries=self._policy.max_retries,
            )
        except Exception as exc:
            # Every caller gets the error; the loop lives on for the next batch.
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        created = 0
        for item, job in zip(batch, jobs, strict=True):
            if job is not None:
                created += 1
                _log_transition(job, "queued")
            if not item.future.done():
                item.future.set_result(job)
        if created:
            self._counts[JobStatus.QUEUED] += created
            self._mark_changed()
            await self._announce_work(created)

    # Claiming ---------------------------------------------------------------

    @ensure_started
    async def claim(self, worker_id: str, timeout_s: float = 30.0) -> ClaimedJob | None:
        """Lease the next job, waiting up to ``timeout_s`` for one to arrive."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        if self._is_retired(worker_id):
            # A released worker's late long poll: wait it out, lease nothing.
            await asyncio.sleep(max(timeout_s, 0.0))
            return None
        while not self._is_retired(worker_id):
            seen_generation = self._work_generation
            claimed = await self._try_claim(worker_id)
            if claimed is not None:
                return claimed
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return None
            async with self._work_available:
                if seen_generation != self._work_generation:
                    continue
                try:
                    await asyncio.wait_for(self._work_available.wait(), remaining_s)
                except TimeoutError:
                    return None
        return None

    async def _try_claim(self, worker_id: str) -> ClaimedJob | None:
        if self._counts[JobStatus.QUEUED] <= 0 or self._is_retired(worker_id):
            return None
        lease_id = uuid.uuid4().hex
        async with self._transitions:
            now_s = self._clock()
            claimed = await self.store.claim_next(
                worker_id, lease_id, now_s=now_s, lease_s=self._policy.lease_s
            )
            if claimed is None:
                return None
            expires_at_s = now_s + self._policy.lease_s
            self._leases[claimed.job.id] = _Lease(lease_id, worker_id, expires_at_s)
            self._move(JobStatus.QUEUED, JobStatus.PROCESSING)
        _log_transition(
            claimed.job,
            "started",
            worker=worker_id,
            attempt=claimed.job.retry_count + 1,
        )
        return ClaimedJob(
            job=claimed.job,
            lease_id=lease_id,
            lease_expires_at=expires_at_s,
            is_manual_request=claimed.is_manual_request,
        )

    # Progress and results ---------------------------------------------------

    @ensure_started
    async def progress(
        self, job_id: str, lease_id: str, report: ProgressReport | dict[str, Any]
    ) -> bool:
        """Record progress and renew the lease.

        Returns:
            True to go on; False when the worker must stop (the job was
            cancelled or the lease is no longer the caller's).
        """
        lease = self._leases.get(job_id)
        if lease is None or lease.lease_id != lease_id:
            return False
        parsed = ProgressReport.model_validate(report)
        lease.expires_at_s = self._clock() + self._policy.lease_s
        self._progress[job_id] = (lease_id, parsed)
        return True

    @ensure_started
    async def complete(
        self, job_id: str, lease_id: str, result: JobResult | dict[str, Any]
    ) -> Job:
        """Mark a job completed; rejected when the lease is not the caller's."""
        parsed = JobResult.model_validate(result)
        async with self._transitions:
            self._progress.pop(job_id, None)
            job = await self.store.complete(job_id, lease_id, parsed)
            if job is None:
                raise LeaseLost(f"Job {job_id} is no longer leased to this worker")
            self._drop_lease(job_id)
            self._move(JobStatus.PROCESSING, JobStatus.COMPLETED)
        _log_transition(
            job,
            "done",
            worker=job.worker_id,
            elapsed_s=f"{parsed.processing_time_seconds or 0:.1f}",
            segments=parsed.segments_count,
        )
        return job

    @ensure_started
    async def fail(
        self, job_id: str, lease_id: str, error: str, *, transient: bool = False
    ) -> Job:
        """Report a failed attempt; a transient one is retried with backoff."""
        lease = self._leases.get(job_id)
        if lease is None or lease.lease_id != lease_id:
            raise LeaseLost(f"Job {job_id} is no longer leased to this worker")
        return await self._end_attempt(job_id, lease_id, error, transient=transient)

    @ensure_started
    async def release_worker(self, worker_id: str, reason: str) -> int:
        """Return every job a dead or removed worker held, counting the attempt.

        The worker id is retired: a claim of it still waiting here (the long
        poll of a worker that died) answers None instead of leasing a job to
        nobody.
        """
        self._retired_workers[worker_id] = time.monotonic()
        await self._announce_work(None)
        held = [
            (job_id, lease.lease_id)
            for job_id, lease in self._leases.items()
            if lease.worker_id == worker_id
        ]
        released = 0
        for job_id, lease_id in held:
            try:
                await self._end_attempt(job_id, lease_id, reason, transient=True)
            except LeaseLost:
                self._drop_lease(job_id)
                continue
            released += 1
        return released

    async def _end_attempt(
        self, job_id: str, lease_id: str, error: str, *, transient: bool
    ) -> Job:
        async with self._transitions:
            return await self._end_attempt_locked(
                job_id, lease_id, error, transient=transient
            )

    async def _end_attempt_locked(
        self, job_id: str, lease_id: str, error: str, *, transient: bool
    ) -> Job:
        self._progress.pop(job_id, None)
        current = await self.get(job_id)
        if transient and current.retry_count < self._policy.max_retries:
            delay_s = self._policy.backoff_s(current.retry_count + 1)
            job = await self.store.requeue(
                job_id, lease_id, error=error, available_at_s=self._clock() + delay_s
            )
            if job is None:
                raise LeaseLost(f"Job {job_id} is no longer leased to this worker")
            self._drop_lease(job_id)
            self._move(JobStatus.PROCESSING, JobStatus.QUEUED)
            _log_transition(
                job,
                "retry",
                attempt=f"{job.retry_count}/{self._policy.max_retries}",
                delay_s=f"{delay_s:.1f}",
                error=error,
            )
            await self._schedule_due_wakeup()
            return job
        failed = await self.store.fail(job_id, lease_id, error=error)
        if failed is None:
            raise LeaseLost(f"Job {job_id} is no longer leased to this worker")
        self._drop_lease(job_id)
        self._move(JobStatus.PROCESSING, JobStatus.FAILED)
        _log_transition(failed, "failed", attempt=failed.retry_count + 1, error=error)
        return failed

    # User actions -----------------------------------------------------------

    @ensure_started
    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or processing job; its worker is told to stop."""
        async with self._transitions:
            before = await self.get(job_id)
            if before.status.is_terminal:
                raise InvalidInput(
                    f"Job {job_id} is already {before.status.value} and cannot be"
                    " cancelled"
                )
            job = await self.store.cancel(job_id)
            if job is None:
                raise InvalidInput(f"Job {job_id} is already in a terminal state")
            # Without its lease the holder's next progress report answers
            # "stop", and its completion is refused.
            self._drop_lease(job_id)
            self._progress.pop(job_id, None)
            self._move(before.status, JobStatus.CANCELLED)
        _log_transition(job, "cancelled")
        return job

    @ensure_started
    async def retry(self, job_id: str) -> Job:
        """Put a failed job back in the queue."""
        async with self._transitions:
            before = await self.get(job_id)
            if before.status is not JobStatus.FAILED:
                raise InvalidInput(
                    f"Job {job_id} is {before.status.value}; only failed jobs can"
                    " be retried"
                )
            job = await self.store.retry(job_id)
            if job is None:
                raise InvalidInput(f"Job {job_id} is no longer failed")
            self._move(JobStatus.FAILED, JobStatus.QUEUED)
        _log_transition(job, "queued", retry="manual")
        await self._announce_work(1)
        return job

    @ensure_started
    async def clear_completed(self) -> int:
        async with self._transitions:
            count = await self.store.clear_completed()
            self._counts[JobStatus.COMPLETED] = max(
                self._counts[JobStatus.COMPLETED] - count, 0
            )
        self._mark_changed()
        logger.info("cleared %d completed jobs", count)
        return count

    # Reading ----------------------------------------------------------------

    @ensure_started
    async def get(self, job_id: str) -> Job:
        job = await self.store.get(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return job

    @ensure_started
    async def list_jobs(
        self, status: JobStatus | None = None, page: int = 1, page_size: int = 50
    ) -> JobPage:
        """One page of jobs, newest first."""
        _check_page(page, page_size)
        jobs = await self.store.page(
            status, limit=page_size, offset=(page - 1) * page_size
        )
        total = self._total(status)
        return JobPage(jobs=jobs, total=total, page=page, page_size=page_size)

    @ensure_started
    async def list_jobs_json(
        self, status: JobStatus | None = None, page: int = 1, page_size: int = 50
    ) -> tuple[int, bytes]:
        """:meth:`list_jobs` serialised to JSON here, in the actor.

        Bytes cross the actor boundary far cheaper than 50 pickled models
        that the front end would only dump again.

        Returns:
            The version the page is at least as new as (see
            :meth:`wait_for_change`), and the page as JSON.
        """
        _check_page(page, page_size)
        version = self._version
        jobs = await self.store.page_dicts(
            status, limit=page_size, offset=(page - 1) * page_size
        )
        body = {
            "jobs": jobs,
            "total": self._total(status),
            "page": page,
            "page_size": page_size,
        }
        return version, orjson.dumps(body)

    @ensure_started
    async def wait_for_change(self, seen_version: int, timeout_s: float = 30.0) -> int:
        """Long poll: the jobs' version, once it differs from ``seen_version``.

        Front ends cache job pages per version and drop them when this
        returns a newer one. Answers the current version after ``timeout_s``
        even if nothing changed.
        """
        if self._version == seen_version:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)
        return self._version

    def _total(self, status: JobStatus | None) -> int:
        return sum(self._counts.values()) if status is None else self._counts[status]

    @ensure_started
    async def stats(self) -> QueueStats:
        counts = self._counts
        return QueueStats(
            total_jobs=sum(counts.values()),
            queued=counts[JobStatus.QUEUED],
            processing=counts[JobStatus.PROCESSING],
            completed=counts[JobStatus.COMPLETED],
            failed=counts[JobStatus.FAILED],
            cancelled=counts[JobStatus.CANCELLED],
        )

    @ensure_started
    async def ping(self) -> bool:
        """Raise StoreError unless the database answers a read."""
        for conn in self._connections:
            await db.ping(conn)
        return True

    # Background work --------------------------------------------------------

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_FLUSH_INTERVAL_S)
            try:
                await self._flush_progress()
            except Exception:
                logger.exception("cannot write progress; will try again")

    async def _flush_progress(self) -> None:
        pending, self._progress = self._progress, {}
        reports = [
            (job_id, lease_id, report, self._leases[job_id].expires_at_s)
            for job_id, (lease_id, report) in pending.items()
            if job_id in self._leases
        ]
        await self.store.write_progress(reports)
        if reports:
            self._mark_changed()

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(min(self._policy.lease_s / 4, 5.0))
            try:
                await self.expire_leases()
            except Exception:
                logger.exception("cannot expire leases; will try again")

    @ensure_started
    async def expire_leases(self) -> int:
        """Requeue (or fail) every job whose lease ran out."""
        now_s = self._clock()
        expired = [
            (job_id, lease)
            for job_id, lease in self._leases.items()
            if lease.expires_at_s <= now_s
        ]
        for job_id, lease in expired:
            try:
                await self._end_attempt(
                    job_id,
                    lease.lease_id,
                    f"lease expired (worker {lease.worker_id} stopped reporting)",
                    transient=True,
                )
            except (LeaseLost, NotFound):
                self._drop_lease(job_id)
        return len(expired)

    async def _schedule_due_wakeup(self) -> None:
        """Wake claimers when the earliest job in backoff becomes due."""
        due_at_s = await self.store.next_due_at(self._clock())
        if self._due_timer is not None:
            self._due_timer.cancel()
            self._due_timer = None
        if due_at_s is None:
            return
        loop = asyncio.get_running_loop()
        delay_s = max(due_at_s - self._clock(), 0.0) + 0.01
        self._due_timer = loop.call_later(
            delay_s, lambda: loop.create_task(self._on_due())
        )

    async def _on_due(self) -> None:
        await self._announce_work(None)
        await self._schedule_due_wakeup()

    async def _announce_work(self, count: int | None) -> None:
        """Wake waiting claimers: ``count`` of them, or all when None.

        Once a worker was retired its waiting claim could take a wake-up and
        leave the job for nobody, so from then on everyone is woken.
        """
        self._work_generation += 1
        for worker_id in list(self._retired_workers):
            self._is_retired(worker_id)  # forgets the ones past their time
        async with self._work_available:
            if count is None or self._retired_workers:
                self._work_available.notify_all()
            else:
                self._work_available.notify(count)

    def _is_retired(self, worker_id: str) -> bool:
        """Whether ``worker_id`` was released in the last RETIRED_WORKER_S.

        Long enough for any claim the gone worker left waiting to run out;
        a pool that starts again may then reuse the id.
        """
        released_at_s = self._retired_workers.get(worker_id)
        if released_at_s is None:
            return False
        if time.monotonic() - released_at_s < RETIRED_WORKER_S:
            return True
        del self._retired_workers[worker_id]
        return False

    def _drop_lease(self, job_id: str) -> None:
        self._leases.pop(job_id, None)

    def _move(self, source: JobStatus, target: JobStatus) -> None:
        self._counts[source] = max(self._counts[source] - 1, 0)
        self._counts[target] += 1
        self._mark_changed()

    def _mark_changed(self) -> None:
        """A job row changed: bump the version and wake its long pollers."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()


def duplicate_job(body: JobCreate) -> Conflict:
    """The 409 for a file that already has a queued or processing job."""
    return Conflict(
        f"Job already exists for this file: {body.file_path} ({body.target_lang})"
    )


def _check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise InvalidInput("page must be 1 or more", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
        )


def _as_create(value: JobCreate | dict[str, Any]) -> JobCreate:
    if isinstance(value, JobCreate):
        return value
    return JobCreate.model_validate(value)


def _log_transition(job: Job, event: str, **fields: Any) -> None:
    """The one fixed-format line per job transition."""
    extra = "".join(f" {key}={value}" for key, value in fields.items())
    logger.info(
        "job %s %s file=%s%s",
        job.id,
        event,
        job.file_name,
        extra,
        extra={"job_id": job.id},
    )
