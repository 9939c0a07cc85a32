"""End-to-end transcription throughput, and worker memory over many jobs.

Runs, in one process and on the same files, model, compute type and total
threads:

1. plain faster-whisper: one ``WhisperModel`` transcribing the files one after
   another (``cpu_threads`` = every thread the workers get together);
2. Transcriptarr: the server's actors on a local Ray (queue, settings, a pool
   of CPU workers) behind its HTTP API: every file is POSTed to ``/api/jobs``
   and the clock stops when the last job is completed, its ``.srt`` written.

Both load the model before the clock starts and decode with the ``fast``
preset's options (beam 1, VAD, word timestamps), the language given. Then one
worker runs ``--memory-jobs`` short jobs, and the RSS of its process after 5
jobs is compared with its RSS after all of them.

    .venv/bin/python -m benchmarks.transcription [--copies 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Importing the package first turns Ray's token auth on before Ray is imported.
import transcriptarr  # noqa: F401

# isort: split
import aiohttp
import psutil
import ray
from aiohttp import web
from faster_whisper import WhisperModel

from transcriptarr.actors import cluster
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services
from transcriptarr.media import languages
from transcriptarr.media.audio import decode_audio
from transcriptarr.transcription import catalog
from transcriptarr.transcription.presets import resolve_preset

MEDIA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "media"
FIXTURES = {"english.mkv": "eng", "spanish.mkv": "spa"}
MEMORY_FIXTURE = "english.mkv"
MEMORY_FIRST_JOBS = 5
SAMPLE_RATE_HZ = 16_000
POLL_S = 0.1
BYTES_PER_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MediaFile:
    path: Path
    language: str
    audio_s: float = 0.0

    @property
    def subtitle(self) -> Path:
        code = languages.to_iso639_1(self.language) or self.language
        return self.path.with_suffix(f".{code}.srt")


def main() -> int:
    args = _arguments()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="transcriptarr-bench-") as scratch:
        return asyncio.run(_run(args, Path(scratch)))


async def _run(args: argparse.Namespace, root: Path) -> int:
    files = _copies(root / "batch", args.copies)
    threads = args.workers * args.threads
    models_dir = args.models_dir or root / "models"
    audio_s = sum(item.audio_s for item in files)
    print(
        f"{len(files)} files ({args.copies} x each of {', '.join(FIXTURES)}), "
        f"{audio_s:.1f} s of audio; model {args.model}, int8, beam 1, "
        f"{threads} threads in all"
    )

    plain_s = _plain(files, args.model, models_dir, threads)
    async with _server(root, models_dir, args) as server:
        ours_s = await server.transcribe_all(files)
        memory = await server.memory_over_jobs(root / "memory", args.memory_jobs)

    _print_throughput(audio_s, plain_s, ours_s, args)
    _print_memory(memory, args.memory_jobs)
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies per fixture")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--model", default="base")
    parser.add_argument("--memory-jobs", type=int, default=50)
    parser.add_argument("--models-dir", type=Path, default=None)
    return parser.parse_args()


def _copies(folder: Path, copies: int) -> list[MediaFile]:
    folder.mkdir(parents=True)
    files: list[MediaFile] = []
    for fixture, language in FIXTURES.items():
        audio_s = len(decode_audio(MEDIA / fixture)) / SAMPLE_RATE_HZ
        for index in range(copies):
            target = folder / f"{Path(fixture).stem}_{index:02d}.mkv"
            files.append(_copy(MEDIA / fixture, target, language, audio_s))
    return files


def _copy(source: Path, target: Path, language: str, audio_s: float = 0.0) -> MediaFile:
    shutil.copy(source, target)
    return MediaFile(target, language, audio_s)


def _numbered_copies(
    source: Path, folder: Path, count: int, language: str
) -> list[MediaFile]:
    folder.mkdir(parents=True)
    return [
        _copy(source, folder / f"{index:03d}{source.suffix}", language)
        for index in range(count)
    ]


# Plain faster-whisper --------------------------------------------------------


def _plain(files: list[MediaFile], model: str, models_dir: Path, threads: int) -> float:
    """Wall seconds of one WhisperModel transcribing ``files`` in turn."""
    choice = resolve_preset("fast", {"transcription_model_fast": model}, device="cpu")
    whisper = WhisperModel(
        str(catalog.resolve_model(model, models_dir)),
        device="cpu",
        compute_type=choice.compute_type,
        cpu_threads=threads,
    )
    started_s = time.perf_counter()
    for item in files:
        segments, _ = whisper.transcribe(
            str(item.path),
            language=languages.to_whisper(item.language),
            beam_size=choice.beam_size,
            vad_filter=choice.vad_filter,
            word_timestamps=True,
        )
        for _ in segments:
            pass
    return time.perf_counter() - started_s


# Through the server ---------------------------------------------------------


class _Server:
    """Jobs through the HTTP API of a running server."""

    def __init__(self, pool: ActorProxy, http: aiohttp.ClientSession) -> None:
        self.pool = pool
        self.http = http

    async def transcribe_all(self, files: list[MediaFile]) -> float:
        """Wall seconds from the first POST to the last job completed."""
        await self._warm_up(files[0])
        started_s = time.perf_counter()
        await self._run_jobs(files)
        elapsed_s = time.perf_counter() - started_s
        missing = [str(item.path) for item in files if not item.subtitle.is_file()]
        if missing:
            raise RuntimeError(f"no subtitle was written for {', '.join(missing)}")
        return elapsed_s

    async def memory_over_jobs(
        self, folder: Path, total_jobs: int
    ) -> tuple[str, int, int]:
        """(worker id, RSS after the first jobs, RSS after all of them)."""
        await self.pool.stop_pool(30.0)
        await self.pool.start_pool(1, 0)
        worker_id = (await self.pool.list_workers())[0].worker_id
        process = psutil.Process(await self.pool.worker_pid(worker_id))
        files = _numbered_copies(MEDIA / MEMORY_FIXTURE, folder, total_jobs, "eng")
        await self._run_jobs(files[:MEMORY_FIRST_JOBS])
        early_bytes = int(process.memory_info().rss)
        await self._run_jobs(files[MEMORY_FIRST_JOBS:])
        return worker_id, early_bytes, int(process.memory_info().rss)

    async def _warm_up(self, item: MediaFile) -> None:
        """One job per worker, so that every worker has its model loaded."""
        workers = await self.pool.list_workers()
        folder = item.path.parent.parent / "warm"
        await self._run_jobs(
            _numbered_copies(item.path, folder, len(workers), item.language)
        )

    async def _run_jobs(self, files: list[MediaFile]) -> None:
        finished_before = await self._finished_count()
        job_ids = await asyncio.gather(*(self._post(item) for item in files))
        await self._wait_all(list(job_ids), finished_before)

    async def _post(self, item: MediaFile) -> str:
        body = {
            "file_path": str(item.path),
            "file_name": item.path.name,
            "source_lang": item.language,
            "target_lang": item.language,
        }
        async with self.http.post("/api/jobs", json=body) as reply:
            reply.raise_for_status()
            job: dict[str, Any] = await reply.json()
        return str(job["id"])

    async def _wait_all(self, job_ids: list[str], finished_before: int) -> None:
        # One small request per poll: polling every job would take CPU from
        # the workers being measured.
        target = finished_before + len(job_ids)
        while True:
            if await self._finished_count() >= target:
                break
            await asyncio.sleep(POLL_S)
        for job_id in job_ids:
            async with self.http.get(f"/api/jobs/{job_id}") as reply:
                job = await reply.json()
            if job["status"] != "completed":
                raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")

    async def _finished_count(self) -> int:
        async with self.http.get("/api/jobs/stats") as reply:
            stats = await reply.json()
        return int(stats["completed"] + stats["failed"] + stats["cancelled"])


@asynccontextmanager
async def _server(
    root: Path, models_dir: Path, args: argparse.Namespace
) -> AsyncIterator[_Server]:
    """Ray, the actors with ``--workers`` CPU workers, and the HTTP API."""
    cluster.init_ray(
        num_cpus=args.workers * args.threads, token_path=root / "ray" / "auth_token"
    )
    data_dir = root / "data"
    data_dir.mkdir()
    handles = await cluster.create_actors(data_dir, with_pool=False)
    await handles.settings.bulk_update.remote(
        {
            "worker_cpu_count": str(args.workers),
            "worker_cpu_threads": str(args.threads),
            "transcription_model_fast": args.model,
        }
    )
    handles.pool = await cluster.create_pool(models_dir)
    services = Services(
        queue=ActorProxy(handles.queue),
        settings=ActorProxy(handles.settings),
        pool=ActorProxy(handles.pool),
    )
    runner = web.AppRunner(create_app(services), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            yield _Server(ActorProxy(handles.pool), http)
    finally:
        await runner.cleanup()
        await cluster.close_actors(handles, kill=True)
        ray.shutdown()


# Report ---------------------------------------------------------------------


def _print_throughput(
    audio_s: float, plain_s: float, ours_s: float, args: argparse.Namespace
) -> None:
    threads = args.workers * args.threads
    rows = [
        ("plain faster-whisper, sequential", f"1 x {threads}", plain_s),
        ("transcriptarr, POST -> .srt", f"{args.workers} x {args.threads}", ours_s),
    ]
    print()
    print(f"{'pipeline':<34} {'workers x threads':>17} {'wall s':>8} {'audio s/s':>10}")
    for name, shape, wall_s in rows:
        print(f"{name:<34} {shape:>17} {wall_s:>8.2f} {audio_s / wall_s:>10.2f}")
    ratio = plain_s / ours_s
    print(f"{'ratio (transcriptarr / plain)':<34} {'':>17} {'':>8} {ratio:>9.2f}x")


def _print_memory(memory: tuple[str, int, int], total_jobs: int) -> None:
    worker_id, early_bytes, late_bytes = memory
    change = 100.0 * (late_bytes - early_bytes) / early_bytes
    print()
    print(f"memory of {worker_id} (RSS of its process), {MEMORY_FIXTURE} jobs")
    early_mib = early_bytes / BYTES_PER_MIB
    late_mib = late_bytes / BYTES_PER_MIB
    print(f"{f'after {MEMORY_FIRST_JOBS} jobs':<15} {early_mib:>8.1f} MiB")
    print(f"{f'after {total_jobs} jobs':<15} {late_mib:>8.1f} MiB ({change:+.1f}%)")


if __name__ == "__main__":
    sys.exit(main())
