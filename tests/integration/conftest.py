"""Integration fixtures: one real local Ray cluster for the whole session."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

# The package turns Ray's token auth on when imported (transcriptarr/__init__.py);
# Ray reads that setting once, on its own import, so the package comes first.
import transcriptarr  # noqa: F401

# isort: split
import av
import jiwer
import numpy as np
import pytest
import ray
from aiohttp.test_utils import TestClient, TestServer

from transcriptarr.actors import cluster
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import QueuePolicy
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services
from transcriptarr.media.audio import decode_audio
from transcriptarr.models import Job, JobCreate

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local Ray head on loopback with token auth, started once."""
    token_path = tmp_path_factory.mktemp("ray") / "auth_token"
    cluster.init_ray(num_cpus=2, token_path=token_path)
    yield
    ray.shutdown()


@pytest.fixture
async def actors(
    ray_cluster: None, tmp_path: Path
) -> AsyncIterator[cluster.ActorHandles]:
    """Fresh queue and settings actors over a new SQLite file (no workers)."""
    handles = await cluster.create_actors(
        tmp_path, suffix=f"-{uuid.uuid4().hex[:8]}", with_pool=False
    )
    yield handles
    await cluster.close_actors(handles, kill=True)


@pytest.fixture
async def live_api(
    actors: cluster.ActorHandles,
) -> AsyncIterator[TestClient[object, object]]:
    """The real app in this process, calling real actors through Ray."""
    services = Services(
        queue=ActorProxy(actors.queue),
        settings=ActorProxy(actors.settings),
        scanner=ActorProxy(actors.scanner) if actors.scanner is not None else None,
    )
    client: TestClient[object, object] = TestClient(TestServer(create_app(services)))
    await client.start_server()
    yield client
    await client.close()


# Worker pools (tests/integration/test_workers*.py, test_pipeline*.py) -------

MEDIA = Path(__file__).parent.parent / "fixtures" / "media"
JOB_WAIT_S = 180.0
RAY_SETTLE_S = 30.0
SAMPLE_RATE_HZ = 16_000
AAC_FRAME_SAMPLES = 1024


@dataclass
class PoolRig:
    """Queue, settings and a worker pool on Ray, and a folder of media."""

    handles: cluster.ActorHandles
    queue: ActorProxy
    pool: ActorProxy
    media_dir: Path

    def copy(self, fixture: str, name: str | None = None) -> Path:
        """Copy a fixture into the media folder (outputs land beside it)."""
        target = self.media_dir / (name or fixture)
        shutil.copy(MEDIA / fixture, target)
        return target

    async def submit(self, path: Path, **fields: Any) -> Job:
        body = {"file_path": str(path), "file_name": path.name, "target_lang": "eng"}
        job: Job = await self.queue.submit(JobCreate.model_validate(body | fields))
        return job

    async def wait(
        self,
        job: Job,
        done: Callable[[Job], bool] | None = None,
        timeout_s: float = JOB_WAIT_S,
    ) -> Job:
        """Poll the job until ``done`` holds (default: a terminal status)."""
        check = done or (lambda current: current.status.is_terminal)
        deadline_s = time.monotonic() + timeout_s
        while True:
            current: Job = await self.queue.get(job.id)
            if check(current):
                return current
            assert time.monotonic() < deadline_s, f"job never got there: {current}"
            await asyncio.sleep(0.1)


@asynccontextmanager
async def _pool_rig(
    data_dir: Path, models_dir: Path, cpu_workers: int
) -> AsyncIterator[PoolRig]:
    suffix = f"-{uuid.uuid4().hex[:8]}"
    handles = await cluster.create_actors(data_dir, suffix=suffix, with_pool=False)
    await handles.settings.bulk_update.remote(
        {"worker_cpu_count": str(cpu_workers), "worker_progress_interval_s": "0.5"}
    )
    # Short backoff and lease: a requeued job is picked up again at once.
    policy = QueuePolicy(max_retries=3, backoff_base_s=0.2, lease_s=15.0)
    await handles.queue.configure.remote(policy)
    handles.pool = await cluster.create_pool(models_dir, suffix=suffix)
    media_dir = data_dir / "media"
    media_dir.mkdir()
    try:
        yield PoolRig(
            handles, ActorProxy(handles.queue), ActorProxy(handles.pool), media_dir
        )
    finally:
        await cluster.close_actors(handles, kill=True)
        await _wait_for_free_cpus()


async def _wait_for_free_cpus() -> None:
    """Let Ray take back the workers' CPUs before the next pool asks for them."""
    deadline_s = time.monotonic() + RAY_SETTLE_S
    total = ray.cluster_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
    while ray.available_resources().get("CPU", 0.0) < total:  # type: ignore[no-untyped-call]
        if time.monotonic() > deadline_s:
            return
        await asyncio.sleep(0.2)


PoolRigFactory = Callable[..., AbstractAsyncContextManager[PoolRig]]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder for every pool: the bundled model is joined once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def pool_rigs(
    ray_cluster: None, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> PoolRigFactory:
    """``async with pool_rigs(cpu_workers=N) as rig``: a pool, cleaned up after."""

    def factory(*, cpu_workers: int = 1) -> AbstractAsyncContextManager[PoolRig]:
        data_dir = tmp_path_factory.mktemp("pool")
        return _pool_rig(data_dir, models_dir, cpu_workers)

    return factory


def spoken_text(fixture: str, track: int = 0) -> str:
    """What a fixture's audio track says (``scripts.json``)."""
    scripts = json.loads((MEDIA / "scripts.json").read_text("utf-8"))
    text: str = scripts[fixture]["tracks"][track]["text"]
    return text


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def srt_text(path: Path) -> str:
    """The words of an SRT file: every line but numbers and timings."""
    lines = path.read_text("utf-8").splitlines()
    kept = [
        line
        for line in lines
        if line.strip() and not line.strip().isdigit() and "-->" not in line
    ]
    return normalised(" ".join(kept))


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalised(reference), normalised(hypothesis)))


def long_speech(fixture: str, target: Path, repeats: int) -> float:
    """Write ``target``: the fixture's speech ``repeats`` times, in English-
    tagged AAC in Matroska. Returns its duration in seconds."""
    speech = np.tile(decode_audio(MEDIA / fixture), repeats)
    pcm = (np.clip(speech, -1.0, 1.0) * 32767).astype(np.int16)
    with av.open(str(target), "w", format="matroska") as container:
        stream: Any = container.add_stream("aac", rate=SAMPLE_RATE_HZ)
        stream.layout = "mono"
        stream.metadata["language"] = "eng"
        for start in range(0, len(pcm), AAC_FRAME_SAMPLES):
            chunk = pcm[None, start : start + AAC_FRAME_SAMPLES]
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE_HZ
            frame.pts = start
            frame.time_base = Fraction(1, SAMPLE_RATE_HZ)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return len(pcm) / SAMPLE_RATE_HZ
