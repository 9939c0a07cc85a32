"""The pool's logic with in-process fake workers, and its placement rules.

Ray cannot place a GPU worker on this machine (it has no GPU), so the GPU
paths are tested as pure logic: actor options, device checks, messages.
Real worker processes dying and being replaced run in tests/integration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from transcriptarr.actors import pool as pool_module
from transcriptarr.actors.placement import (
    GPU_ENV_VARS,
    ClusterResources,
    Reservation,
    impossible_reason,
    shortage_reason,
    worker_options,
)
from transcriptarr.actors.pool import WorkerPool
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.settings import SettingsService
from transcriptarr.actors.worker_types import (
    WorkerSpec,
    WorkerState,
    WorkerStatus,
    WorkerType,
)
from transcriptarr.errors import InvalidInput, NotFound
from transcriptarr.models import JobCreate, JobStatus, WorkersSummary

WAIT_S = 10.0
CPU = WorkerSpec("worker-cpu-0", WorkerType.CPU, cpu_threads=2)
GPU = WorkerSpec("worker-gpu-0", WorkerType.GPU, device_id=1, gpu_fraction=0.5)
NO_GPU = ClusterResources(
    total_cpus=4, free_cpus=4, total_gpus=0, free_gpus=0, gpus_per_node=0
)
TWO_GPUS = ClusterResources(
    total_cpus=4, free_cpus=4, total_gpus=2, free_gpus=2, gpus_per_node=2
)


class FakeWorker:
    """A worker without a process: ``run`` ends when it is stopped or dies."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.state = WorkerState.STARTING
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.completed = 0

    async def start(self) -> WorkerStatus:
        self.state = WorkerState.IDLE
        return await self.status()

    async def run(self) -> None:
        await asyncio.shield(self.ended)

    async def status(self) -> WorkerStatus:
        if self.ended.done():
            raise RuntimeError("the actor died")
        return WorkerStatus(
            worker_id=self.spec.worker_id,
            worker_type=self.spec.worker_type,
            device_id=self.spec.device_id,
            status=self.state,
            current_job_id=None,
            jobs_completed=self.completed,
            jobs_failed=0,
            uptime_seconds=1.0,
            current_job_progress=None,
            current_job_eta=None,
        )

    async def stop(self, timeout_s: float) -> WorkerStatus:
        self.state = WorkerState.STOPPED
        status = await self.status()
        if not self.ended.done():
            self.ended.set_result(None)
        return status

    async def pid(self) -> int:
        return 4242

    def die(self) -> None:
        if not self.ended.done():
            self.ended.set_exception(RuntimeError("ActorDiedError: killed"))


@dataclass
class FakeLauncher:
    """Launches FakeWorkers and reports the resources a test sets."""

    available: ClusterResources

    def __post_init__(self) -> None:
        self.launched: list[FakeWorker] = []
        self.killed: list[str] = []

    def resources(self) -> ClusterResources:
        return self.available

    def launch(self, spec: WorkerSpec, queue: Any, settings: Any) -> FakeWorker:
        worker = FakeWorker(spec)
        self.launched.append(worker)
        return worker

    def kill(self, handle: Any) -> None:
        self.killed.append(handle.spec.worker_id)
        handle.die()

    def worker(self, worker_id: str) -> FakeWorker:
        return next(w for w in self.launched if w.spec.worker_id == worker_id)


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher(
        ClusterResources(
            total_cpus=2, free_cpus=2, total_gpus=0, free_gpus=0, gpus_per_node=0
        )
    )


@pytest.fixture
async def pool(
    board: JobBoard,
    settings_service: SettingsService,
    launcher: FakeLauncher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[WorkerPool]:
    monkeypatch.setattr(pool_module, "RESOURCE_SETTLE_S", 0.0)
    worker_pool = WorkerPool(
        board, settings_service, tmp_path / "models", launcher=launcher
    )
    await worker_pool.start()
    yield worker_pool
    await worker_pool.close()


async def eventually_listed(pool: WorkerPool, worker_id: str) -> list[WorkerStatus]:
    deadline_s = time.monotonic() + WAIT_S
    while True:
        workers = await pool.list_workers()
        if any(w.worker_id == worker_id for w in workers):
            return workers
        assert time.monotonic() < deadline_s, f"{worker_id} never joined"
        await asyncio.sleep(0.01)


def test_cpu_worker_reserves_one_cpu_per_thread_and_no_gpu() -> None:
    assert worker_options(CPU) == {"num_cpus": 2, "num_gpus": 0}


def test_gpu_worker_reserves_its_fraction_and_sees_every_gpu_by_bus_order() -> None:
    options = worker_options(GPU)
    assert options["num_gpus"] == 0.5
    assert options["num_cpus"] == 0
    assert options["runtime_env"] == {"env_vars": GPU_ENV_VARS}
    assert GPU_ENV_VARS["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] == "1"
    assert GPU_ENV_VARS["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_gpu_worker_on_a_cluster_without_gpus_can_never_be_placed() -> None:
    reason = impossible_reason(GPU, NO_GPU)
    assert reason is not None
    assert "Ray sees no GPU" in reason


def test_gpu_worker_on_a_missing_device_can_never_be_placed() -> None:
    reason = impossible_reason(replace(GPU, device_id=2), TWO_GPUS)
    assert reason == (
        "GPU device_id 2 does not exist: the Ray nodes have at most 2 GPU(s), "
        "device_id 0 to 1"
    )
    assert impossible_reason(GPU, TWO_GPUS) is None


def test_cpu_worker_wider_than_the_cluster_can_never_be_placed() -> None:
    reason = impossible_reason(replace(CPU, cpu_threads=8), NO_GPU)
    assert reason is not None
    assert "reserves 8 CPUs" in reason


def test_two_half_gpu_workers_share_a_card_and_a_third_does_not_fit() -> None:
    reserved = Reservation.of([GPU])
    assert shortage_reason(GPU, TWO_GPUS, reserved) is None
    reserved.add(GPU)
    reason = shortage_reason(GPU, TWO_GPUS, reserved)
    assert reason is not None
    assert reason.startswith("GPU 1 is full")
    assert shortage_reason(replace(GPU, device_id=0), TWO_GPUS, reserved) is None


def test_capacity_counts_the_pools_own_workers_before_ray_reports_them() -> None:
    lagging = replace(NO_GPU, free_cpus=4)
    reserved = Reservation.of([CPU, CPU])
    reason = shortage_reason(CPU, lagging, reserved)
    assert reason is not None
    assert "Ray has 0 of 4 free" in reason


async def test_pool_starts_the_workers_the_settings_ask_for(
    board: JobBoard,
    settings_service: SettingsService,
    launcher: FakeLauncher,
    tmp_path: Path,
) -> None:
    await settings_service.update("worker_cpu_count", "2")
    await settings_service.update("worker_gpu_count", "1")
    worker_pool = WorkerPool(board, settings_service, tmp_path, launcher=launcher)
    await worker_pool.start()

    workers = await worker_pool.list_workers()
    await worker_pool.close()

    assert [w.worker_id for w in workers] == ["worker-cpu-0", "worker-cpu-1"]
    assert all(w.status is WorkerState.IDLE for w in workers)
    assert launcher.launched[0].spec.models_dir == tmp_path


async def test_gpu_worker_without_a_gpu_is_refused_with_a_clear_message(
    pool: WorkerPool,
) -> None:
    with pytest.raises(InvalidInput, match="Ray sees no GPU"):
        await pool.add_worker("gpu", 0)


async def test_gpu_worker_without_a_device_id_is_refused(pool: WorkerPool) -> None:
    with pytest.raises(InvalidInput, match="device_id is required"):
        await pool.add_worker("gpu")


async def test_unknown_worker_type_is_refused(pool: WorkerPool) -> None:
    with pytest.raises(InvalidInput, match="Invalid worker type 'tpu'"):
        await pool.add_worker("tpu")


async def test_gpu_worker_on_a_gpu_cluster_gets_its_device(
    pool: WorkerPool, launcher: FakeLauncher
) -> None:
    launcher.available = TWO_GPUS
    status = await pool.add_worker("gpu", 1)
    assert status.worker_id == "worker-gpu-0"
    assert status.device_id == 1
    assert launcher.worker("worker-gpu-0").spec.device_name == "cuda:1"


async def test_cpu_worker_beyond_the_free_cpus_is_refused(
    pool: WorkerPool, launcher: FakeLauncher
) -> None:
    await pool.add_worker("cpu")
    with pytest.raises(InvalidInput, match="No room for another CPU worker"):
        await pool.add_worker("cpu")
    assert len(launcher.launched) == 2


async def test_dead_worker_hands_back_its_job_and_is_replaced(
    pool: WorkerPool, board: JobBoard, launcher: FakeLauncher
) -> None:
    job = await board.submit(
        JobCreate(file_path="/media/a.mkv", file_name="a.mkv", target_lang="eng")
    )
    assert await board.claim("worker-cpu-0", timeout_s=0) is not None

    launcher.worker("worker-cpu-0").die()
    workers = await eventually_listed(pool, "worker-cpu-1")
    returned = await board.get(job.id)

    assert [w.worker_id for w in workers] == ["worker-cpu-1"]
    assert returned.status is JobStatus.QUEUED
    assert returned.retry_count == 1
    assert returned.error is not None
    assert returned.error.startswith("worker worker-cpu-0 died")


async def test_removed_worker_is_not_replaced_and_its_job_goes_back(
    pool: WorkerPool, board: JobBoard, launcher: FakeLauncher
) -> None:
    job = await board.submit(
        JobCreate(file_path="/media/a.mkv", file_name="a.mkv", target_lang="eng")
    )
    assert await board.claim("worker-cpu-0", timeout_s=0) is not None

    await pool.remove_worker("worker-cpu-0", timeout_s=1.0)
    await asyncio.sleep(0)

    assert await pool.list_workers() == []
    assert launcher.killed == ["worker-cpu-0"]
    assert (await board.get(job.id)).error == "worker worker-cpu-0 was removed"


async def test_unknown_worker_is_not_found(pool: WorkerPool) -> None:
    with pytest.raises(NotFound, match="Worker worker-cpu-9 not found"):
        await pool.get_worker("worker-cpu-9")
    with pytest.raises(NotFound):
        await pool.remove_worker("worker-cpu-9")


async def test_stopped_pool_reports_no_workers_and_starts_again(
    pool: WorkerPool,
) -> None:
    await pool.stop_pool(timeout_s=1.0)
    stopped = await pool.stats()
    await pool.start_pool(cpu_workers=2)
    started = await pool.stats()

    assert (stopped.total_workers, stopped.is_running) == (0, False)
    assert (started.total_workers, started.cpu_workers) == (2, 2)
    assert started.is_running


async def test_pool_start_is_refused_whole_when_it_does_not_fit(
    pool: WorkerPool, launcher: FakeLauncher
) -> None:
    with pytest.raises(InvalidInput, match="No room"):
        await pool.start_pool(cpu_workers=2)
    assert len(launcher.launched) == 1


async def test_summary_has_the_fields_of_the_status_page(
    pool: WorkerPool, launcher: FakeLauncher
) -> None:
    launcher.worker("worker-cpu-0").completed = 3
    summary = WorkersSummary.model_validate(await pool.summary())
    assert summary == WorkersSummary(
        total_workers=1,
        cpu_workers=1,
        idle_workers=1,
        total_jobs_completed=3,
    )


async def test_counts_of_a_dead_worker_stay_in_the_totals(
    pool: WorkerPool, launcher: FakeLauncher
) -> None:
    launcher.worker("worker-cpu-0").completed = 5
    await pool.list_workers()
    launcher.worker("worker-cpu-0").die()
    await eventually_listed(pool, "worker-cpu-1")
    assert (await pool.stats()).total_jobs_completed == 5


async def test_worker_pid_is_asked_of_the_worker(pool: WorkerPool) -> None:
    assert await pool.worker_pid("worker-cpu-0") == 4242


async def test_a_dead_workers_waiting_claim_cannot_lease_a_job(
    pool: WorkerPool, board: JobBoard, launcher: FakeLauncher
) -> None:
    launcher.worker("worker-cpu-0").die()
    await eventually_listed(pool, "worker-cpu-1")
    job = await board.submit(
        JobCreate(file_path="/media/a.mkv", file_name="a.mkv", target_lang="eng")
    )
    # A claim the dead worker made before it died reaches the board late.
    assert await board.claim("worker-cpu-0", timeout_s=0) is None
    assert (await board.get(job.id)).status is JobStatus.QUEUED
