"""The WorkerActor's logic: claim a job, run it in a thread, report, repeat.

A worker is one process with one engine. Its event loop claims jobs from the
board (a long poll), renews the lease with a progress report about once a
second, and answers status calls, while the job itself (decoding, Whisper)
runs in a thread. A progress report the board answers with False (the job was
cancelled, or the lease is gone) sets the stop flag the engine polls.

Two cases end the process on purpose, so the pool replaces it: a GPU error
(a CUDA context that has seen one is not to be trusted), and a cancelled job
whose thread does not stop within :data:`CANCEL_GRACE_S`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ray.exceptions import RayTaskError

from transcriptarr.actors.failure_policy import Disposition, classify, error_text
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.worker_device import (
    gpu_memory_used_mb,
    pipeline_choice,
    whisper_engine,
)
from transcriptarr.actors.worker_types import (
    WorkerSpec,
    WorkerState,
    WorkerStatus,
    WorkerType,
)
from transcriptarr.errors import JobCancelled, LeaseLost, TranscriptarrError
from transcriptarr.models import (
    ClaimedJob,
    JobResult,
    JobStage,
    ProgressReport,
)
from transcriptarr.transcription.engine import TranscriptionEngine
from transcriptarr.transcription.job import JobOutcome, OutputOptions, run_job
from transcriptarr.transcription.presets import ModelChoice, resolve_preset

logger = logging.getLogger(__name__)

# A claim the board holds for a worker that died meanwhile can still take a
# job; the pool hands such a job back once this long poll has run out.
CLAIM_TIMEOUT_S = 10.0
# A cancel is seen within one progress interval; the engine then stops at its
# next segment. A thread still busy after this long is ended with the process.
CANCEL_GRACE_S = 3.0
# Pause after the board or the settings could not be reached.
RETRY_AFTER_ERROR_S = 2.0
EXIT_CODE_RESTART = 3

EngineFactory = Callable[[WorkerSpec], TranscriptionEngine]
ExitProcess = Callable[[int], None]


@dataclass(slots=True)
class _Running:
    """The job a worker holds, shared between its event loop and its thread."""

    claimed: ClaimedJob
    started_s: float = field(default_factory=time.monotonic)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    latest: tuple[JobStage, float, float | None] = (JobStage.LOADING_MODEL, 0.0, None)

    @property
    def job_id(self) -> str:
        return self.claimed.job.id

    @property
    def lease_id(self) -> str:
        return self.claimed.lease_id

    def record(self, stage: JobStage, percent: float, eta_s: float | None) -> None:
        """Progress callback of the job's thread: keep only the latest."""
        self.latest = (stage, min(max(percent, 0.0), 100.0), eta_s)

    def report(self) -> ProgressReport:
        stage, percent, eta_s = self.latest
        eta = None if eta_s is None else round(eta_s)
        return ProgressReport(stage=stage, progress=round(percent, 1), eta_seconds=eta)

    def request_stop(self) -> None:
        """Ask the job's thread to stop (call from the event loop)."""
        self.stop_flag.set()
        self.stopped.set()


class Worker:
    """Claims jobs and turns them into subtitle files, one at a time.

    Args:
        spec: The worker's identity and device.
        queue: The job board (a Ray handle, a proxy, or a plain object).
        settings: The settings service, likewise.
        engine_factory: Builds the engine; tests pass a fake.
        exit_process: Ends the process; tests pass a recorder.
        claim_timeout_s: The longest a claim waits for a job.
        cancel_grace_s: How long a cancelled job's thread may take to stop.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        queue: Any,
        settings: Any,
        *,
        engine_factory: EngineFactory = whisper_engine,
        exit_process: ExitProcess = os._exit,
        claim_timeout_s: float = CLAIM_TIMEOUT_S,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self.spec = spec
        self._queue = _proxy(queue)
        self._settings = _proxy(settings)
        self._engine = engine_factory(spec)
        self._exit_process = exit_process
        self._claim_timeout_s = claim_timeout_s
        self._cancel_grace_s = cancel_grace_s
        self._started_at_s = time.monotonic()
        self._state = WorkerState.STARTING
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._current: _Running | None = None
        self._completed = 0
        self._failed = 0

    @property
    def worker_id(self) -> str:
        return self.spec.worker_id

    # Calls from the pool ----------------------------------------------------

    async def start(self) -> WorkerStatus:
        """Start the job loop (once) and return the worker's status."""
        if self._loop_task is None:
            loop = asyncio.get_running_loop()
            self._loop_task = loop.create_task(self._loop())
            self._state = WorkerState.IDLE
            logger.info(
                "worker %s started on %s (pid %d)",
                self.worker_id,
                self.spec.device_name,
                os.getpid(),
                extra={"worker_id": self.worker_id},
            )
        return self._status()

    async def run(self) -> None:
        """Run until stopped; the pool awaits this to learn that a worker ended."""
        await self.start()
        if self._loop_task is not None:
            await asyncio.shield(self._loop_task)

    async def status(self) -> WorkerStatus:
        return self._status()

    async def pid(self) -> int:
        """The worker's process id (for operators and the kill test)."""
        return os.getpid()

    async def stop(self, timeout_s: float = 30.0) -> WorkerStatus:
        """Stop claiming; let the current job finish for up to ``timeout_s``.

        A job still running after that goes back to the queue.
        """
        self._stopping = True
        task = self._loop_task
        if task is not None and not task.done():
            self._state = WorkerState.STOPPING
            if self._current is None:
                task.cancel()
            _, pending = await asyncio.wait({task}, timeout=max(timeout_s, 0.0))
            if pending:
                await self._abandon_current()
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
        self._state = WorkerState.STOPPED
        logger.info("worker %s stopped", self.worker_id)
        return self._status()

    # The job loop -----------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            claimed = await self._claim()
            if claimed is not None:
                await self._process(claimed)
        if self._state is not WorkerState.ERROR:
            self._state = WorkerState.STOPPED

    async def _claim(self) -> ClaimedJob | None:
        self._state = WorkerState.IDLE
        try:
            values: Mapping[str, Any] = await self._settings.values()
            idle_unload_s = float(values["worker_model_idle_unload_s"])
            await asyncio.to_thread(self._engine.unload_idle, idle_unload_s)
            # Wake up in time to unload a model that just went idle.
            timeout_s = min(self._claim_timeout_s, max(idle_unload_s, 1.0))
            claimed: ClaimedJob | None = await self._queue.claim(
                self.worker_id, timeout_s
            )
        except Exception as exc:
            logger.warning(
                "worker %s cannot claim a job: %s",
                self.worker_id,
                exc,
                extra={"worker_id": self.worker_id},
            )
            await asyncio.sleep(RETRY_AFTER_ERROR_S)
            return None
        return claimed

    async def _process(self, claimed: ClaimedJob) -> None:
        running = _Running(claimed)
        self._current = running
        self._state = WorkerState.BUSY
        heartbeat: asyncio.Task[None] | None = None
        try:
            values: Mapping[str, Any] = await self._settings.values()
            choice = self._choice(claimed, values)
            interval_s = float(values["worker_progress_interval_s"])
            heartbeat = asyncio.create_task(self._heartbeat(running, interval_s))
            outcome = await self._run_in_thread(
                running, choice, OutputOptions.from_settings(values)
            )
        except Exception as exc:
            await self._handle_failure(running, exc)
        else:
            await self._complete(running, choice, outcome)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            self._current = None

    def _choice(self, claimed: ClaimedJob, values: Mapping[str, Any]) -> ModelChoice:
        preset = claimed.job.quality_preset
        choice = resolve_preset(preset, values, device=self.spec.device)
        return pipeline_choice(choice, self.spec)

    async def _run_in_thread(
        self, running: _Running, choice: ModelChoice, output: OutputOptions
    ) -> JobOutcome:
        work = asyncio.ensure_future(
            asyncio.to_thread(
                run_job,
                running.claimed.job,
                self._engine,
                choice,
                output,
                on_progress=running.record,
                should_stop=running.stop_flag.is_set,
            )
        )
        stop_seen = asyncio.ensure_future(running.stopped.wait())
        try:
            await asyncio.wait({work, stop_seen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_seen.cancel()
        if work.done():
            return work.result()
        try:
            return await asyncio.wait_for(asyncio.shield(work), self._cancel_grace_s)
        except TimeoutError:
            # Nobody awaits the thread any more; keep its end out of the logs.
            work.add_done_callback(_ignore_outcome)
            self._exit(
                f"job {running.job_id} did not stop within "
                f"{self._cancel_grace_s:g} s of its cancel"
            )
            raise JobCancelled(f"Job {running.job_id} was cancelled") from None

    async def _heartbeat(self, running: _Running, interval_s: float) -> None:
        """Report progress (renewing the lease) every ``interval_s`` seconds."""
        while True:
            try:
                go_on = await self._queue.progress(
                    running.job_id, running.lease_id, running.report()
                )
            except Exception as exc:
                logger.warning(
                    "worker %s cannot report progress of job %s: %s",
                    self.worker_id,
                    running.job_id,
                    exc,
                    extra=self._extra(running),
                )
                go_on = True
            if not go_on:
                logger.info(
                    "worker %s stops job %s: cancelled or no longer leased",
                    self.worker_id,
                    running.job_id,
                    extra=self._extra(running),
                )
                running.request_stop()
                return
            await asyncio.sleep(interval_s)

    async def _complete(
        self, running: _Running, choice: ModelChoice, outcome: JobOutcome
    ) -> None:
        vram_mb = None
        if self.spec.worker_type is WorkerType.GPU:
            vram_mb = await asyncio.to_thread(
                gpu_memory_used_mb, os.getpid(), self.spec.device_index
            )
        result = JobResult(
            output_path=None
            if outcome.output_path is None
            else str(outcome.output_path),
            segments_count=outcome.segments_count,
            source_lang=outcome.source_lang,
            model_used=choice.model_name,
            device_used=self.spec.device_name,
            vram_used_mb=vram_mb,
            processing_time_seconds=round(time.monotonic() - running.started_s, 2),
            note=outcome.note,
        )
        try:
            await self._queue.complete(running.job_id, running.lease_id, result)
        except Exception as exc:
            # The lease ran out or the board restarted: either way the job is
            # (or will be) back in the queue, and the file written stays ours.
            lost = isinstance(_cause(exc), LeaseLost)
            logger.warning(
                "worker %s cannot complete job %s: %s",
                self.worker_id,
                running.job_id,
                "its lease is gone" if lost else exc,
                extra=self._extra(running),
            )
            return
        self._completed += 1

    async def _handle_failure(self, running: _Running, exc: Exception) -> None:
        disposition = classify(exc)
        if disposition is Disposition.STOP:
            logger.info(
                "worker %s dropped job %s",
                self.worker_id,
                running.job_id,
                extra=self._extra(running),
            )
            return
        if not isinstance(exc, TranscriptarrError):
            logger.exception(
                "worker %s: unexpected error in job %s",
                self.worker_id,
                running.job_id,
                extra=self._extra(running),
            )
        self._failed += 1
        transient = disposition is not Disposition.FAIL
        try:
            await self._queue.fail(
                running.job_id, running.lease_id, error_text(exc), transient=transient
            )
        except Exception as report_error:
            logger.warning(
                "worker %s cannot report the failure of job %s: %s",
                self.worker_id,
                running.job_id,
                report_error,
                extra=self._extra(running),
            )
        if disposition is Disposition.RETRY_AND_EXIT:
            self._exit(f"GPU failure in job {running.job_id}: {error_text(exc)}")

    async def _abandon_current(self) -> None:
        """Hand the running job back to the queue when a stop runs out of time."""
        running = self._current
        if running is None:
            return
        running.request_stop()
        try:
            await self._queue.fail(
                running.job_id,
                running.lease_id,
                f"worker {self.worker_id} was stopped before the job finished",
                transient=True,
            )
        except Exception as exc:
            logger.warning(
                "worker %s cannot hand back job %s: %s",
                self.worker_id,
                running.job_id,
                exc,
                extra=self._extra(running),
            )

    def _exit(self, reason: str) -> None:
        """End the process so the pool starts a fresh worker in its place."""
        logger.error(
            "worker %s exits for a restart: %s",
            self.worker_id,
            reason,
            extra={"worker_id": self.worker_id},
        )
        for handler in logging.getLogger("transcriptarr").handlers:
            handler.flush()
        self._stopping = True
        self._state = WorkerState.ERROR
        self._exit_process(EXIT_CODE_RESTART)

    # Status -----------------------------------------------------------------

    def _status(self) -> WorkerStatus:
        running = self._current
        progress = eta = None
        if running is not None:
            report = running.report()
            progress, eta = report.progress, report.eta_seconds
        return WorkerStatus(
            worker_id=self.worker_id,
            worker_type=self.spec.worker_type,
            device_id=self.spec.device_id,
            status=self._state,
            current_job_id=None if running is None else running.job_id,
            jobs_completed=self._completed,
            jobs_failed=self._failed,
            uptime_seconds=round(time.monotonic() - self._started_at_s, 1),
            current_job_progress=progress,
            current_job_eta=eta,
        )

    def _extra(self, running: _Running) -> dict[str, str]:
        return {"worker_id": self.worker_id, "job_id": running.job_id}


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _proxy(target: Any) -> ActorProxy:
    return target if isinstance(target, ActorProxy) else ActorProxy(target)


def _cause(exc: BaseException) -> BaseException:
    """The exception an actor raised, out of Ray's wrapper."""
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException):
        cause: BaseException = exc.cause
        return cause
    return exc
