"""The worker's logic on a real job board and real media, with a fake engine.

The engine is faked so these tests run in a second without a model; the real
engine runs in tests/integration. The GPU paths (device strings, error
classification, NVML readings) are tested here as pure logic: this machine
has no GPU.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from transcriptarr.actors.failure_policy import Disposition, classify, error_text
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.settings import SettingsService
from transcriptarr.actors.worker import Worker
from transcriptarr.actors.worker_device import gpu_memory_used_mb, pipeline_choice
from transcriptarr.actors.worker_types import WorkerSpec, WorkerState, WorkerType
from transcriptarr.errors import (
    InvalidInput,
    JobCancelled,
    MediaError,
    ModelUnavailable,
    NotFound,
    TranscriptionError,
    TransientError,
)
from transcriptarr.media.subtitles import write_subtitle_atomic
from transcriptarr.models import Job, JobCreate, JobStage, JobStatus, TaskKind
from transcriptarr.transcription.cues import Cue
from transcriptarr.transcription.engine import TranscriptionResult
from transcriptarr.transcription.failures import DeviceFailure
from transcriptarr.transcription.job import NO_SPEECH_NOTE
from transcriptarr.transcription.model_cache import ModelKey
from transcriptarr.transcription.presets import ModelChoice

MEDIA = Path(__file__).parent.parent / "fixtures" / "media"
WAIT_S = 20.0


class FakeEngine:
    """Stands in for WhisperEngine: returns fixed cues, or raises, or blocks."""

    def __init__(
        self,
        cues: list[Cue] | None = None,
        *,
        error: Exception | None = None,
        steps: int = 1,
        step_s: float = 0.0,
        honour_stop: bool = True,
    ) -> None:
        self.cues = [Cue(0.5, 2.0, "Hello there.")] if cues is None else cues
        self.error = error
        self.steps = steps
        self.step_s = step_s
        self.honour_stop = honour_stop
        self.loaded: list[ModelChoice] = []
        self.unload_calls: list[float] = []
        self.stages: list[JobStage] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def load(self, choice: ModelChoice) -> None:
        self.loaded.append(choice)

    def transcribe(
        self,
        audio: Any,
        *,
        choice: ModelChoice,
        source_lang: str | None = None,
        target_lang: str,
        on_progress: Callable[[float, float | None], None] = lambda p, e: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> TranscriptionResult:
        self.started.set()
        for step in range(self.steps):
            if self.honour_stop and should_stop():
                raise JobCancelled("The job was cancelled")
            on_progress(100.0 * step / self.steps, 1.0)
            if self.step_s:
                self.release.wait(self.step_s)
        if self.error is not None:
            raise self.error
        return TranscriptionResult(
            cues=self.cues,
            language=source_lang or "eng",
            detected_language=None if source_lang else "eng",
            language_probability=None if source_lang else 0.9,
            duration_s=len(audio) / 16_000,
            task=TaskKind.TRANSCRIBE,
            model_name=choice.model_name,
            device="cpu",
        )

    def loaded_models(self) -> list[ModelKey]:
        return []

    def unload_idle(self, max_idle_s: float, now: float | None = None) -> list[Any]:
        self.unload_calls.append(max_idle_s)
        return []


class Harness:
    """A worker on the test's event loop, and the board it works for."""

    def __init__(
        self, board: JobBoard, settings: SettingsService, media_dir: Path
    ) -> None:
        self.board = board
        self.settings = settings
        self.media_dir = media_dir
        self.exits: list[int] = []
        self.workers: list[Worker] = []

    async def start(self, engine: FakeEngine, **options: Any) -> Worker:
        spec = WorkerSpec("worker-cpu-0", WorkerType.CPU, models_dir=self.media_dir)
        worker = Worker(
            spec,
            self.board,
            self.settings,
            engine_factory=lambda _: engine,
            exit_process=self.exits.append,
            claim_timeout_s=0.2,
            **options,
        )
        self.workers.append(worker)
        await worker.start()
        return worker

    async def submit(self, fixture: str, **fields: object) -> Job:
        path = self.media_dir / fixture
        if not path.exists():
            shutil.copy(MEDIA / fixture, path)
        body = {"file_path": str(path), "file_name": fixture, "target_lang": "eng"}
        return await self.board.submit(JobCreate.model_validate(body | fields))

    async def wait(self, job: Job, done: Callable[[Job], bool] | None = None) -> Job:
        check = done or (lambda j: j.status.is_terminal)
        deadline_s = time.monotonic() + WAIT_S
        while time.monotonic() < deadline_s:
            current = await self.board.get(job.id)
            if check(current):
                return current
            await asyncio.sleep(0.02)
        raise AssertionError(f"job {job.id} did not get there: {current}")


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for ``check`` to hold (polling, as the board offers no event)."""
    deadline_s = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline_s, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def harness(
    board: JobBoard, settings_service: SettingsService, tmp_path: Path
) -> AsyncIterator[Harness]:
    rig = Harness(board, settings_service, tmp_path)
    yield rig
    for worker in rig.workers:
        await worker.stop(0)


async def test_worker_writes_the_subtitle_and_completes_the_job_with_its_details(
    harness: Harness,
) -> None:
    await harness.start(FakeEngine())
    job = await harness.wait(await harness.submit("english.mkv"))

    assert job.status is JobStatus.COMPLETED
    output = harness.media_dir / "english.en.srt"
    assert job.output_path == str(output)
    assert (
        output.read_text("utf-8") == "1\n00:00:00,500 --> 00:00:02,000\nHello there.\n"
    )
    assert job.segments_count == 1
    assert job.worker_id == "worker-cpu-0"
    assert job.model_used == "base"
    assert job.device_used == "cpu"
    assert job.vram_used_mb is None
    assert job.processing_time_seconds is not None
    assert job.source_lang == "eng"


async def test_one_thread_cpu_worker_runs_the_sequential_pipeline(
    harness: Harness,
) -> None:
    engine = FakeEngine()
    await harness.start(engine)
    await harness.wait(await harness.submit("english.mkv"))
    assert [choice.batch_size for choice in engine.loaded] == [0]


async def test_audio_without_speech_completes_with_no_segments_and_no_file(
    harness: Harness,
) -> None:
    await harness.start(FakeEngine(cues=[]))
    job = await harness.wait(await harness.submit("silence.mkv"))

    assert job.status is JobStatus.COMPLETED
    assert job.segments_count == 0
    assert job.output_path is None
    assert job.error == NO_SPEECH_NOTE
    assert not list(harness.media_dir.glob("*.srt"))


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("not_media.mkv", "not a readable media file"),
        ("empty.mkv", "empty"),
        ("truncated.mkv", "truncated"),
        ("no_audio.mkv", "no audio track"),
    ],
)
async def test_bad_media_fails_the_job_at_once_and_the_next_job_completes(
    harness: Harness, fixture: str, reason: str
) -> None:
    await harness.start(FakeEngine())
    bad = await harness.submit(fixture)
    good = await harness.submit("english.mkv")

    failed = await harness.wait(bad)
    assert failed.status is JobStatus.FAILED
    assert failed.retry_count == 0
    assert failed.error is not None
    assert reason in failed.error
    assert (await harness.wait(good)).status is JobStatus.COMPLETED


async def test_cancelled_job_stops_the_engine_and_the_worker_takes_the_next_job(
    harness: Harness, settings_service: SettingsService
) -> None:
    await settings_service.update("worker_progress_interval_s", "0.05")
    engine = FakeEngine(steps=10_000, step_s=0.01)
    worker = await harness.start(engine)
    first = await harness.submit("english.mkv")
    await asyncio.to_thread(engine.started.wait, WAIT_S)

    await harness.board.cancel(first.id)

    async def let_go() -> bool:
        return (await worker.status()).current_job_id != first.id

    await eventually(let_go)
    engine.steps = 1
    second = await harness.wait(await harness.submit("spanish.mkv", target_lang="spa"))

    assert (await harness.board.get(first.id)).status is JobStatus.CANCELLED
    assert second.status is JobStatus.COMPLETED
    assert second.worker_id == "worker-cpu-0"
    assert not (harness.media_dir / "english.en.srt").exists()
    assert harness.exits == []


async def test_thread_that_ignores_a_cancel_ends_the_process_after_the_grace(
    harness: Harness, settings_service: SettingsService
) -> None:
    await settings_service.update("worker_progress_interval_s", "0.05")
    engine = FakeEngine(steps=1, step_s=WAIT_S, honour_stop=False)
    worker = await harness.start(engine, cancel_grace_s=0.1)
    job = await harness.submit("english.mkv")
    await asyncio.to_thread(engine.started.wait, WAIT_S)

    await harness.board.cancel(job.id)

    async def exited() -> bool:
        return bool(harness.exits)

    await eventually(exited)
    engine.release.set()

    assert harness.exits == [3]
    assert (await worker.status()).status is WorkerState.ERROR


async def test_gpu_failure_hands_the_job_back_and_ends_the_process(
    harness: Harness,
) -> None:
    await harness.start(FakeEngine(error=DeviceFailure("CUDA error: out of memory")))
    job = await harness.submit("english.mkv")
    requeued = await harness.wait(job, lambda j: j.retry_count == 1)

    async def exited() -> bool:
        return bool(harness.exits)

    await eventually(exited)

    assert requeued.status is JobStatus.QUEUED
    assert requeued.error == "CUDA error: out of memory"
    assert harness.exits == [3]


async def test_a_subtitle_the_service_did_not_write_is_kept(
    harness: Harness,
) -> None:
    users = harness.media_dir / "english.en.srt"
    users.write_text("1\n00:00:01,000 --> 00:00:02,000\nMine\n", "utf-8")
    await harness.start(FakeEngine())
    job = await harness.wait(await harness.submit("english.mkv"))

    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert "output_overwrite_existing" in job.error
    assert users.read_text("utf-8").endswith("Mine\n")


async def test_overwrite_setting_replaces_a_subtitle_the_service_did_not_write(
    harness: Harness, settings_service: SettingsService
) -> None:
    await settings_service.update("output_overwrite_existing", "true")
    users = harness.media_dir / "english.en.srt"
    users.write_text("1\n00:00:01,000 --> 00:00:02,000\nMine\n", "utf-8")
    await harness.start(FakeEngine())
    job = await harness.wait(await harness.submit("english.mkv"))

    assert job.status is JobStatus.COMPLETED
    assert "Hello there." in users.read_text("utf-8")


async def test_our_own_subtitle_is_replaced_without_the_setting(
    harness: Harness,
) -> None:
    ours = harness.media_dir / "english.en.srt"
    write_subtitle_atomic(ours, "1\n00:00:01,000 --> 00:00:02,000\nOld\n")
    await harness.start(FakeEngine())
    job = await harness.wait(await harness.submit("english.mkv"))

    assert job.status is JobStatus.COMPLETED
    assert "Hello there." in ours.read_text("utf-8")


async def test_settings_choose_vtt_output_with_three_letter_codes(
    harness: Harness, settings_service: SettingsService
) -> None:
    await settings_service.update("output_format", "vtt")
    await settings_service.update("output_language_style", "iso639_2")
    await harness.start(FakeEngine())
    job = await harness.wait(await harness.submit("english.mkv"))

    output = harness.media_dir / "english.eng.vtt"
    assert job.output_path == str(output)
    assert output.read_text("utf-8").startswith("WEBVTT\n")


async def test_progress_is_reported_at_most_once_per_interval(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[Any] = []
    original = harness.board.progress

    async def spy(job_id: str, lease_id: str, report: Any) -> bool:
        reports.append(report)
        return await original(job_id, lease_id, report)

    monkeypatch.setattr(harness.board, "progress", spy)
    engine = FakeEngine(steps=300, step_s=0.001)
    await harness.start(engine)
    await harness.wait(await harness.submit("english.mkv"))

    # The default interval is 1 s: the job's many progress callbacks become
    # the one report sent when it started.
    assert len(reports) == 1
    assert reports[0].stage is JobStage.LOADING_MODEL


async def test_a_stated_other_language_is_reported_as_translating(
    harness: Harness, settings_service: SettingsService
) -> None:
    await settings_service.update("worker_progress_interval_s", "0.02")
    engine = FakeEngine(steps=50, step_s=0.02)
    worker = await harness.start(engine)
    job = await harness.submit("spanish.mkv", source_lang="spa")

    translating = await harness.wait(
        job, lambda j: j.current_stage is JobStage.TRANSLATING
    )
    status = await worker.status()

    assert translating.status is JobStatus.PROCESSING
    assert status.status is WorkerState.BUSY
    assert status.current_job_id == job.id
    assert status.current_job_progress is not None


async def test_idle_models_are_unloaded_after_the_configured_time(
    harness: Harness, settings_service: SettingsService
) -> None:
    await settings_service.update("worker_model_idle_unload_s", "7")
    engine = FakeEngine()
    await harness.start(engine)
    await harness.wait(await harness.submit("english.mkv"))

    async def checked_after_the_job() -> bool:
        return len(engine.unload_calls) >= 2

    await eventually(checked_after_the_job)
    assert engine.unload_calls[-1] == 7.0


async def test_stop_lets_the_running_job_finish(harness: Harness) -> None:
    engine = FakeEngine(steps=20, step_s=0.01)
    worker = await harness.start(engine)
    job = await harness.submit("english.mkv")
    await asyncio.to_thread(engine.started.wait, WAIT_S)

    status = await worker.stop(timeout_s=WAIT_S)

    assert status.status is WorkerState.STOPPED
    assert status.jobs_completed == 1
    assert (await harness.board.get(job.id)).status is JobStatus.COMPLETED


async def test_stop_hands_back_a_job_that_outlasts_the_timeout(
    harness: Harness,
) -> None:
    engine = FakeEngine(steps=10_000, step_s=0.01)
    worker = await harness.start(engine)
    job = await harness.submit("english.mkv")
    await asyncio.to_thread(engine.started.wait, WAIT_S)

    status = await worker.stop(timeout_s=0.05)
    returned = await harness.board.get(job.id)

    assert status.status is WorkerState.STOPPED
    assert returned.status is JobStatus.QUEUED
    assert returned.retry_count == 1
    assert returned.error == "worker worker-cpu-0 was stopped before the job finished"


async def test_idle_worker_stops_at_once(harness: Harness) -> None:
    worker = await harness.start(FakeEngine())
    status = await worker.stop(timeout_s=WAIT_S)
    assert status.status is WorkerState.STOPPED
    assert await worker.pid() > 0


@pytest.mark.parametrize(
    ("error", "disposition"),
    [
        (JobCancelled("cancelled"), Disposition.STOP),
        (DeviceFailure("CUDA error"), Disposition.RETRY_AND_EXIT),
        (TransientError("disk full"), Disposition.RETRY),
        (MediaError("truncated"), Disposition.FAIL),
        (NotFound("no such file"), Disposition.FAIL),
        (InvalidInput("bad language"), Disposition.FAIL),
        (ModelUnavailable("no model"), Disposition.FAIL),
        (TranscriptionError("no translation"), Disposition.FAIL),
        (MemoryError(), Disposition.RETRY),
        (RuntimeError("bug"), Disposition.RETRY),
    ],
)
def test_errors_are_classified_by_what_retrying_can_fix(
    error: Exception, disposition: Disposition
) -> None:
    assert classify(error) is disposition


def test_error_text_keeps_our_detail_and_names_foreign_errors() -> None:
    assert error_text(MediaError("a.mkv: truncated")) == "a.mkv: truncated"
    assert error_text(RuntimeError("boom")) == "RuntimeError: boom"


def test_devices_are_named_cpu_or_cuda_with_the_device_id() -> None:
    cpu = WorkerSpec("worker-cpu-0", WorkerType.CPU)
    gpu = WorkerSpec("worker-gpu-0", WorkerType.GPU, device_id=1)
    assert (cpu.device, cpu.device_name) == ("cpu", "cpu")
    assert (gpu.device, gpu.device_index, gpu.device_name) == ("cuda", 1, "cuda:1")


def test_batched_pipeline_is_kept_on_gpu_and_multi_thread_cpu_workers() -> None:
    choice = ModelChoice("base", "int8", beam_size=1, batch_size=8, vad_filter=True)
    one = WorkerSpec("worker-cpu-0", WorkerType.CPU, cpu_threads=1)
    four = WorkerSpec("worker-cpu-1", WorkerType.CPU, cpu_threads=4)
    gpu = WorkerSpec("worker-gpu-0", WorkerType.GPU, device_id=0)
    assert pipeline_choice(choice, one).batch_size == 0
    assert pipeline_choice(choice, four).batch_size == 8
    assert pipeline_choice(choice, gpu).batch_size == 8


class FakeNvml:
    """The calls of ``pynvml`` that gpu_memory_used_mb makes."""

    class NVMLError(Exception):
        pass

    def __init__(self, processes: list[Any], *, broken: bool = False) -> None:
        self.processes = processes
        self.broken = broken
        self.shutdowns = 0
        self.devices: list[int] = []

    def nvmlInit(self) -> None:
        if self.broken:
            raise self.NVMLError("driver not loaded")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self.devices.append(index)
        return index

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return self.processes


def test_vram_is_the_memory_nvml_lists_for_the_worker_process() -> None:
    nvml = FakeNvml(
        [
            SimpleNamespace(pid=10, usedGpuMemory=900 * 1024 * 1024),
            SimpleNamespace(pid=42, usedGpuMemory=1536 * 1024 * 1024),
        ]
    )
    assert gpu_memory_used_mb(42, 1, nvml=nvml) == 1536
    assert nvml.devices == [1]
    assert nvml.shutdowns == 1


def test_vram_is_unknown_when_nvml_does_not_list_the_process() -> None:
    hidden = FakeNvml([SimpleNamespace(pid=10, usedGpuMemory=None)])
    assert gpu_memory_used_mb(10, 0, nvml=hidden) is None
    assert gpu_memory_used_mb(42, 0, nvml=FakeNvml([], broken=True)) is None
