"""The worker pool's logic: start, watch, replace and stop WorkerActors.

The pool is one actor. For every worker it holds a pending ``run()`` call:
that call returns when the worker was stopped and raises when its process
died. A death hands the worker's job back to the queue (the attempt counts)
and starts a replacement under a new id.

A worker is only started where Ray can place it. A request that Ray could
never satisfy (a GPU worker on a cluster without GPUs) or that does not fit
the free capacity is refused at once with a message saying why, so no caller
waits on an actor that stays pending.

What fits where is decided in :mod:`transcriptarr.actors.placement`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from transcriptarr.actors.lifecycle import ensure_started
from transcriptarr.actors.placement import (
    ClusterResources,
    RayWorkerLauncher,
    Reservation,
    WorkerLauncher,
    impossible_reason,
    shortage_reason,
)
from transcriptarr.actors.proxy import ActorProxy, resolve_actor
from transcriptarr.actors.worker_types import (
    WorkerSpec,
    WorkerState,
    WorkerStatus,
    WorkerType,
)
from transcriptarr.errors import InvalidInput, NotFound, Unavailable
from transcriptarr.models import WorkersSummary

logger = logging.getLogger(__name__)

WORKER_START_TIMEOUT_S = 120.0
STATUS_TIMEOUT_S = 2.0
STOP_MARGIN_S = 5.0
# Ray's view of free resources lags a removal by up to a second or so.
RESOURCE_SETTLE_S = 3.0
RESOURCE_POLL_S = 0.25


class PoolStats(BaseModel):
    """``GET /api/workers/stats``."""

    total_workers: int
    cpu_workers: int
    gpu_workers: int
    idle_workers: int
    busy_workers: int
    stopped_workers: int
    error_workers: int
    total_jobs_completed: int
    total_jobs_failed: int
    uptime_seconds: float
    is_running: bool


@dataclass(slots=True)
class _Member:
    spec: WorkerSpec
    handle: Any
    proxy: ActorProxy
    ready: bool = False
    removing: bool = False
    last_status: WorkerStatus | None = None
    watch: asyncio.Task[None] | None = None


class WorkerPool:
    """Starts workers from the settings, replaces dead ones, answers the API.

    Args:
        queue: The job board's handle, or its actor name (passed on to every
            worker).
        settings: The settings service's handle or actor name (likewise).
        models_dir: Where workers find and cache Whisper models.
        launcher: Starts worker processes; Ray actors by default.
        start_timeout_s: The longest a new worker may take to answer.
    """

    def __init__(
        self,
        queue: Any,
        settings: Any,
        models_dir: str | Path,
        *,
        launcher: WorkerLauncher | None = None,
        start_timeout_s: float = WORKER_START_TIMEOUT_S,
    ) -> None:
        # Workers get the raw handles: Ray pickles them, not our proxies.
        self._queue_target = resolve_actor(queue)
        self._settings_target = resolve_actor(settings)
        self._queue = ActorProxy(self._queue_target)
        self._settings = ActorProxy(self._settings_target)
        self._models_dir = Path(models_dir)
        self._launcher: WorkerLauncher = launcher or RayWorkerLauncher()
        self._start_timeout_s = start_timeout_s
        self._members: dict[str, _Member] = {}
        self._next_index = dict.fromkeys(WorkerType, 0)
        self._retired_completed = 0
        self._retired_failed = 0
        self._running = False
        self._started = False
        self._started_at_s = time.monotonic()
        self._change_lock = asyncio.Lock()
        self.start_lock = asyncio.Lock()

    @property
    def is_started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Start the workers the settings ask for.

        A worker that cannot start (no GPU, no room) is logged and left out,
        so the service still comes up.
        """
        if self._started:
            return
        self._started = True
        self._running = True
        values = await self._settings.values()
        specs = self._specs(
            int(values["worker_cpu_count"]), int(values["worker_gpu_count"]), values
        )
        async with self._change_lock:
            for spec in specs:
                try:
                    await self._check_room([spec])
                    await self._launch(spec)
                except (InvalidInput, Unavailable) as exc:
                    logger.warning("a %s worker was not started: %s", spec.device, exc)
        logger.info("worker pool started with %d workers", len(self._members))

    async def close(self) -> None:
        """End every worker now (server shutdown).

        Their jobs return to the queue when it restarts or their leases run
        out; no attempt is charged here.
        """
        self._running = False
        for member in list(self._members.values()):
            member.removing = True
            self._launcher.kill(member.handle)
            if member.watch is not None:
                member.watch.cancel()
        self._members.clear()

    # The Workers API ---------------------------------------------------------

    @ensure_started
    async def list_workers(self) -> list[WorkerStatus]:
        members = list(self._members.values())
        return list(await asyncio.gather(*(self._poll(m) for m in members)))

    @ensure_started
    async def get_worker(self, worker_id: str) -> WorkerStatus:
        return await self._poll(self._member(worker_id))

    @ensure_started
    async def add_worker(
        self, worker_type: WorkerType | str, device_id: int | None = None
    ) -> WorkerStatus:
        """Start one worker and return its status once it runs.

        Raises:
            InvalidInput: a bad type, a GPU worker without ``device_id``, or a
                worker Ray cannot place (no GPU, no free capacity).
        """
        kind = _worker_type(worker_type)
        if kind is WorkerType.GPU and device_id is None:
            raise InvalidInput(
                "device_id is required for GPU workers", field="device_id"
            )
        if device_id is not None and device_id < 0:
            raise InvalidInput("device_id must be 0 or more", field="device_id")
        values = await self._settings.values()
        spec = self._spec(kind, device_id if kind is WorkerType.GPU else None, values)
        async with self._change_lock:
            await self._check_room([spec])
            member = await self._launch(spec)
            self._running = True
        return await self._poll(member)

    @ensure_started
    async def remove_worker(self, worker_id: str, timeout_s: float = 30.0) -> None:
        """Stop a worker, letting its job finish for up to ``timeout_s``."""
        member = self._member(worker_id)
        await self._remove(member, timeout_s, reason="removed")

    @ensure_started
    async def start_pool(self, cpu_workers: int = 0, gpu_workers: int = 0) -> None:
        """Add ``cpu_workers`` CPU and ``gpu_workers`` GPU workers, all or none.

        GPU workers go round the ``worker_gpu_device_ids`` setting.
        """
        if cpu_workers < 0 or gpu_workers < 0:
            raise InvalidInput("worker counts must be 0 or more")
        values = await self._settings.values()
        specs = self._specs(cpu_workers, gpu_workers, values)
        async with self._change_lock:
            await self._check_room(specs)
            await asyncio.gather(*(self._launch(spec) for spec in specs))
            self._running = True

    @ensure_started
    async def stop_pool(self, timeout_s: float = 30.0) -> None:
        """Stop every worker, each given ``timeout_s`` to finish its job."""
        self._running = False
        members = list(self._members.values())
        await asyncio.gather(
            *(self._remove(m, timeout_s, reason="pool stopped") for m in members)
        )

    @ensure_started
    async def stats(self) -> PoolStats:
        statuses = await self.list_workers()
        by_state = {state: 0 for state in WorkerState}
        for status in statuses:
            by_state[status.status] += 1
        return PoolStats(
            total_workers=len(statuses),
            cpu_workers=sum(s.worker_type is WorkerType.CPU for s in statuses),
            gpu_workers=sum(s.worker_type is WorkerType.GPU for s in statuses),
            idle_workers=by_state[WorkerState.IDLE],
            busy_workers=by_state[WorkerState.BUSY],
            stopped_workers=by_state[WorkerState.STOPPED],
            error_workers=by_state[WorkerState.ERROR],
            total_jobs_completed=self._retired_completed
            + sum(s.jobs_completed for s in statuses),
            total_jobs_failed=self._retired_failed
            + sum(s.jobs_failed for s in statuses),
            uptime_seconds=round(time.monotonic() - self._started_at_s, 1),
            is_running=self._running,
        )

    @ensure_started
    async def summary(self) -> dict[str, Any]:
        """The ``workers`` part of ``/api/status`` and the count of ``/health``."""
        stats = await self.stats()
        return stats.model_dump(include=set(WorkersSummary.model_fields))

    @ensure_started
    async def worker_pid(self, worker_id: str) -> int:
        """The process id of a worker (for operators and tests)."""
        pid: int = await self._member(worker_id).proxy.pid()
        return pid

    # Starting and watching ---------------------------------------------------

    def _specs(
        self, cpu_count: int, gpu_count: int, values: Mapping[str, Any]
    ) -> list[WorkerSpec]:
        device_ids = _gpu_device_ids(values)
        specs = [self._spec(WorkerType.CPU, None, values) for _ in range(cpu_count)]
        specs += [
            self._spec(WorkerType.GPU, device_ids[i % len(device_ids)], values)
            for i in range(gpu_count)
        ]
        return specs

    def _spec(
        self, kind: WorkerType, device_id: int | None, values: Mapping[str, Any]
    ) -> WorkerSpec:
        """A worker to start; :meth:`_launch` gives it its id."""
        return WorkerSpec(
            worker_id="",
            worker_type=kind,
            device_id=device_id,
            cpu_threads=max(int(values["worker_cpu_threads"]), 1),
            gpu_fraction=float(values["worker_gpu_fraction"]),
            models_dir=self._models_dir,
        )

    async def _check_room(self, specs: list[WorkerSpec]) -> None:
        """Refuse, with the reason, workers that Ray cannot place now.

        A shortage is checked again for a moment: the capacity of a worker
        that was just removed shows up in Ray's figures a little late.
        """
        deadline_s = time.monotonic() + RESOURCE_SETTLE_S
        while True:
            resources = self._launcher.resources()
            reason = self._first_problem(specs, resources)
            if reason is None:
                return
            if reason[0] or time.monotonic() >= deadline_s:
                raise InvalidInput(reason[1])
            await asyncio.sleep(RESOURCE_POLL_S)

    def _first_problem(
        self, specs: list[WorkerSpec], resources: ClusterResources
    ) -> tuple[bool, str] | None:
        """(can never fit, message) of the first spec that does not fit."""
        reserved = Reservation.of(m.spec for m in self._members.values())
        for spec in specs:
            impossible = impossible_reason(spec, resources)
            if impossible is not None:
                return True, impossible
            shortage = shortage_reason(spec, resources, reserved)
            if shortage is not None:
                return False, shortage
            reserved.add(spec)
        return None

    def _new_id(self, kind: WorkerType) -> str:
        index = self._next_index[kind]
        self._next_index[kind] = index + 1
        return f"worker-{kind.value}-{index}"

    async def _launch(self, template: WorkerSpec) -> _Member:
        spec = replace(template, worker_id=self._new_id(template.worker_type))
        handle = self._launcher.launch(spec, self._queue_target, self._settings_target)
        member = _Member(spec, handle, ActorProxy(handle))
        self._members[spec.worker_id] = member
        try:
            member.last_status = await asyncio.wait_for(
                member.proxy.start(), self._start_timeout_s
            )
        except Exception as exc:
            self._members.pop(spec.worker_id, None)
            self._launcher.kill(handle)
            why = (
                f"no answer within {self._start_timeout_s:g} s"
                if isinstance(exc, TimeoutError)
                else _describe(exc)
            )
            raise Unavailable(f"Worker {spec.worker_id} did not start: {why}") from exc
        member.ready = True
        member.watch = asyncio.create_task(self._watch(member))
        logger.info("worker %s joined the pool (%s)", spec.worker_id, spec.device_name)
        return member

    async def _watch(self, member: _Member) -> None:
        """Wait for the worker to end; replace it unless it was removed."""
        try:
            await member.proxy.run()
            reason = "its job loop ended"
        except Exception as exc:
            reason = _describe(exc)
        if member.removing:
            return
        worker_id = member.spec.worker_id
        logger.error("worker %s died: %s", worker_id, reason)
        self._retire(member)
        self._launcher.kill(member.handle)
        await self._release(worker_id, f"worker {worker_id} died ({reason})")
        if self._running:
            await self._replace(member.spec)

    async def _replace(self, dead: WorkerSpec) -> None:
        try:
            member = await self._launch(dead)
        except Unavailable as exc:
            logger.error("cannot replace worker %s: %s", dead.worker_id, exc)
            return
        logger.info("worker %s replaces %s", member.spec.worker_id, dead.worker_id)

    async def _remove(self, member: _Member, timeout_s: float, *, reason: str) -> None:
        member.removing = True
        worker_id = member.spec.worker_id
        try:
            member.last_status = await asyncio.wait_for(
                member.proxy.stop(timeout_s), timeout_s + STOP_MARGIN_S
            )
        except Exception as exc:
            logger.warning("worker %s did not stop cleanly: %s", worker_id, exc)
        self._retire(member)
        self._launcher.kill(member.handle)
        if member.watch is not None:
            member.watch.cancel()
        await self._release(worker_id, f"worker {worker_id} was {reason}")
        logger.info("worker %s left the pool (%s)", worker_id, reason)

    async def _release(self, worker_id: str, reason: str) -> None:
        """Hand back what a worker held, its attempt counted.

        The board also retires the worker id, so a long-poll claim the gone
        worker left waiting there cannot lease it a job afterwards. Worker ids
        are never reused.
        """
        try:
            released = await self._queue.release_worker(worker_id, reason)
        except Exception as exc:
            # Lease expiry requeues whatever this call could not reach.
            logger.warning("cannot release the jobs of %s: %s", worker_id, exc)
            return
        if released:
            logger.info("returned %d job(s) of %s to the queue", released, worker_id)

    def _retire(self, member: _Member) -> None:
        if self._members.pop(member.spec.worker_id, None) is None:
            return
        if member.last_status is not None:
            self._retired_completed += member.last_status.jobs_completed
            self._retired_failed += member.last_status.jobs_failed

    # Status ------------------------------------------------------------------

    def _member(self, worker_id: str) -> _Member:
        member = self._members.get(worker_id)
        if member is None:
            raise NotFound(f"Worker {worker_id} not found")
        return member

    async def _poll(self, member: _Member) -> WorkerStatus:
        if not member.ready:
            return _placeholder(member, WorkerState.STARTING)
        try:
            status: WorkerStatus = await asyncio.wait_for(
                member.proxy.status(), STATUS_TIMEOUT_S
            )
        except Exception as exc:
            logger.warning("worker %s does not answer: %s", member.spec.worker_id, exc)
            return _placeholder(member, WorkerState.ERROR)
        member.last_status = status
        return status


def _placeholder(member: _Member, state: WorkerState) -> WorkerStatus:
    last = member.last_status
    return WorkerStatus(
        worker_id=member.spec.worker_id,
        worker_type=member.spec.worker_type,
        device_id=member.spec.device_id,
        status=state,
        current_job_id=None,
        jobs_completed=last.jobs_completed if last else 0,
        jobs_failed=last.jobs_failed if last else 0,
        uptime_seconds=last.uptime_seconds if last else 0.0,
        current_job_progress=None,
        current_job_eta=None,
    )


def _worker_type(value: WorkerType | str) -> WorkerType:
    try:
        return WorkerType(value)
    except ValueError as exc:
        raise InvalidInput(
            f"Invalid worker type {value!r}: use cpu or gpu", field="worker_type"
        ) from exc


def _gpu_device_ids(values: Mapping[str, Any]) -> list[int]:
    raw = values.get("worker_gpu_device_ids") or ["0"]
    try:
        ids = [int(item) for item in raw]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"worker_gpu_device_ids: {raw!r} is not a list of GPU ids",
            field="worker_gpu_device_ids",
        ) from exc
    return ids or [0]


def _describe(exc: BaseException) -> str:
    """One line about an error, without Ray's multi-line traceback."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
