"""A worker's process killed mid-job, and a job cancelled mid-way, on real Ray.

One one-thread CPU worker serves the module. The long file is the English
fixture said eight times (about three minutes of speech), so a job is still
transcribing when the test acts on it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.conftest import (
    PoolRig,
    PoolRigFactory,
    long_speech,
    spoken_text,
    srt_text,
    word_error_rate,
)
from transcriptarr.actors.worker_types import WorkerStatus
from transcriptarr.media.subtitles import TEMP_SUFFIX
from transcriptarr.models import Job, JobStage, JobStatus

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

REPEATS = 8
CANCEL_BOUND_S = 5.0
WAIT_S = 180.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(pool_rigs: PoolRigFactory) -> AsyncIterator[PoolRig]:
    async with pool_rigs(cpu_workers=1) as pool_rig:
        yield pool_rig


def long_file(rig: PoolRig, name: str) -> Path:
    target = rig.media_dir / name
    long_speech("english.mkv", target, REPEATS)
    return target


def transcribing(job: Job) -> bool:
    return job.current_stage is JobStage.TRANSCRIBING and job.progress > 0


async def only_worker(rig: PoolRig) -> WorkerStatus:
    workers: list[WorkerStatus] = await rig.pool.list_workers()
    assert len(workers) == 1
    return workers[0]


async def seconds_until_let_go(rig: PoolRig, job_id: str) -> float:
    """How long the worker keeps ``job_id`` as its current job."""
    started_s = time.monotonic()
    while True:
        elapsed_s = time.monotonic() - started_s
        if (await only_worker(rig)).current_job_id != job_id:
            return elapsed_s
        assert elapsed_s < WAIT_S, "the worker never let the job go"
        await asyncio.sleep(0.05)


async def test_killed_worker_job_returns_to_the_queue_and_a_replacement_does_it(
    rig: PoolRig,
) -> None:
    media = long_file(rig, "killed.mkv")
    job = await rig.wait(await rig.submit(media, source_lang="eng"), transcribing)
    victim = job.worker_id
    assert victim is not None
    pid = await rig.pool.worker_pid(victim)

    os.kill(pid, signal.SIGKILL)
    requeued = await rig.wait(job, lambda j: j.retry_count == 1, WAIT_S)
    done = await rig.wait(job, timeout_s=WAIT_S)

    assert requeued.error is not None
    assert requeued.error.startswith(f"worker {victim} died")
    assert done.status is JobStatus.COMPLETED, done.error
    assert done.worker_id not in {None, victim}
    assert (await only_worker(rig)).worker_id == done.worker_id
    outputs = sorted(path.name for path in rig.media_dir.iterdir())
    assert [name for name in outputs if name.startswith("killed.")] == [
        "killed.en.srt",
        "killed.mkv",
    ]
    assert not [name for name in outputs if name.endswith(TEMP_SUFFIX)]
    script = " ".join([spoken_text("english.mkv")] * REPEATS)
    text = srt_text(rig.media_dir / "killed.en.srt")
    assert word_error_rate(script, text) < 0.15


async def test_cancel_stops_the_worker_within_5_s_and_it_takes_the_next_job(
    rig: PoolRig,
) -> None:
    media = long_file(rig, "cancelled.mkv")
    job = await rig.wait(await rig.submit(media, source_lang="eng"), transcribing)
    worker_id = job.worker_id

    await rig.queue.cancel(job.id)
    stopped_after_s = await seconds_until_let_go(rig, job.id)
    following = await rig.wait(await rig.submit(rig.copy("english.mkv")))

    assert stopped_after_s < CANCEL_BOUND_S
    assert (await rig.queue.get(job.id)).status is JobStatus.CANCELLED
    assert not (rig.media_dir / "cancelled.en.srt").exists()
    assert following.status is JobStatus.COMPLETED, following.error
    assert following.worker_id == worker_id
