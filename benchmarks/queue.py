"""Queue benchmark: the job board through HTTP and Ray, against SQLite alone.

Run: ``python benchmarks/queue.py [--stored 100000] [--submissions 3000]``

Three figures, each beside a baseline measured in the same run:

1. durable submissions per second over HTTP (``POST /api/jobs``, 50 clients),
   against the same ``JobBoard`` called in-process with no Ray and no HTTP;
2. claim latency, from a submission to a claimer that was already waiting,
   through Ray, against the in-process board;
3. ``GET /api/jobs`` p50/p99 with ``--stored`` jobs stored and 50 concurrent
   clients, while ``--churn`` jobs a second are submitted (each change drops
   the front ends' cached pages), against ``JobBoard.list_jobs`` called
   in-process under the same churn.

The ratio column is the service's figure over the baseline's: for the rate,
the share of the in-process rate that survives HTTP and Ray; for latencies,
what the actor and HTTP layers cost.
"""

from __future__ import annotations

import sys

# This file is named like the standard library's ``queue``; drop its folder from
# the import path before anything imports ``queue``.
if sys.path and sys.path[0].rstrip("/").endswith("benchmarks"):
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import aiohttp

from transcriptarr.actors import cluster
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.config import ServerConfig
from transcriptarr.models import JobCreate
from transcriptarr.server import _spawn_front_ends, _stop_front_ends

CONCURRENCY = 50


def body(index: int, prefix: str) -> dict[str, object]:
    name = f"{prefix}-{index:07d}.mkv"
    return {"file_path": f"/bench/{name}", "file_name": name, "target_lang": "spa"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


async def run_clients(
    count: int, call: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Run ``count`` calls over CONCURRENCY clients: wall seconds, latencies."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def client() -> None:
        for index in next_index:
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, latencies


async def claim_latencies(queue: ActorProxy, rounds: int) -> list[float]:
    """Time from submit to the return of a claim that was already waiting."""
    found: list[float] = []
    for index in range(rounds):
        waiter = asyncio.create_task(queue.claim("bench-worker", 10.0))
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        await queue.submit(JobCreate.model_validate(body(index, "claim")))
        claimed = await waiter
        found.append(time.perf_counter() - started)
        assert claimed is not None
    return found


async def churn(queue: ActorProxy, per_s: float, stop: asyncio.Event) -> None:
    """Change a job ``per_s`` times a second, as a busy library does."""
    index = 0
    while not stop.is_set() and per_s > 0:
        await queue.submit(JobCreate.model_validate(body(index, "churn")))
        index += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / per_s)


async def with_churn(
    queue: ActorProxy, per_s: float, work: Awaitable[tuple[float, list[float]]]
) -> tuple[float, list[float]]:
    stop = asyncio.Event()
    writer = asyncio.create_task(churn(queue, per_s, stop))
    try:
        return await work
    finally:
        stop.set()
        await writer


async def fill(queue: ActorProxy, stored: int) -> None:
    batch = 2000
    for start in range(0, stored, batch):
        items = [
            JobCreate.model_validate(body(i, "stored"))
            for i in range(start, min(start + batch, stored))
        ]
        await queue.submit_many(items)


async def measure_service(args: argparse.Namespace, data_dir: Path) -> dict[str, float]:
    cluster.init_ray(token_path=data_dir / "ray_auth_token")
    handles = await cluster.create_actors(data_dir)
    queue = ActorProxy(handles.queue)
    config = ServerConfig(port=args.port, data_dir=data_dir, workers=1)
    front_ends = _spawn_front_ends(config, cluster.gcs_address())
    base = f"http://127.0.0.1:{args.port}"
    results: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, base)

            async def post(index: int) -> None:
                async with session.post(
                    f"{base}/api/jobs", json=body(index, "http")
                ) as r:
                    assert r.status == 201, await r.text()

            wall_s, _ = await run_clients(args.submissions, post)
            results["submit_per_s"] = args.submissions / wall_s

            claims = await claim_latencies(queue, args.claims)
            results["claim_p50_ms"] = percentile(claims, 0.5) * 1000
            results["claim_p99_ms"] = percentile(claims, 0.99) * 1000

            await fill(queue, args.stored - args.submissions - args.claims)

            async def list_page(index: int) -> None:
                page = 1 + index % 20
                async with session.get(f"{base}/api/jobs?page={page}") as r:
                    assert r.status == 200
                    await r.read()

            _, lists = await with_churn(
                queue, args.churn, run_clients(args.lists, list_page)
            )
            results["list_p50_ms"] = percentile(lists, 0.5) * 1000
            results["list_p99_ms"] = percentile(lists, 0.99) * 1000
            stats = await queue.stats()
            results["stored"] = stats.total_jobs
    finally:
        _stop_front_ends(front_ends)
        await cluster.close_actors(handles, kill=True)
    return results


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(200):
        try:
            async with session.get(f"{base}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the front end did not start")


async def measure_baseline(
    args: argparse.Namespace, data_dir: Path
) -> dict[str, float]:
    board = JobBoard(data_dir / "baseline.db")
    await board.start()
    queue = ActorProxy(board)
    results: dict[str, float] = {}
    try:

        async def submit(index: int) -> None:
            await board.submit(JobCreate.model_validate(body(index, "direct")))

        wall_s, _ = await run_clients(args.submissions, submit)
        results["submit_per_s"] = args.submissions / wall_s

        claims = await claim_latencies(queue, args.claims)
        results["claim_p50_ms"] = percentile(claims, 0.5) * 1000
        results["claim_p99_ms"] = percentile(claims, 0.99) * 1000

        await fill(queue, args.stored - args.submissions - args.claims)

        async def list_page(index: int) -> None:
            await board.list_jobs(None, 1 + index % 20, 50)

        _, lists = await with_churn(
            queue, args.churn, run_clients(args.lists, list_page)
        )
        results["list_p50_ms"] = percentile(lists, 0.5) * 1000
        results["list_p99_ms"] = percentile(lists, 0.99) * 1000
        results["stored"] = (await board.stats()).total_jobs
    finally:
        await board.close()
    return results


ROWS = [
    ("durable submissions/s (50 clients)", "submit_per_s", ">= 1000/s"),
    ("claim latency p50 (ms)", "claim_p50_ms", ""),
    ("claim latency p99 (ms)", "claim_p99_ms", "p99 < 50 ms"),
    ("GET /api/jobs p50 (ms)", "list_p50_ms", ""),
    ("GET /api/jobs p99 (ms)", "list_p99_ms", "p99 < 50 ms"),
]


def print_table(service: dict[str, float], baseline: dict[str, float]) -> None:
    stored = f"service {service['stored']:.0f}, baseline {baseline['stored']:.0f}"
    print(f"jobs stored: {stored}")
    header = f"{'metric':38} {'HTTP+Ray':>10} {'SQLite only':>12} {'ratio':>7}  goal"
    print(header)
    print("-" * len(header))
    for label, key, goal in ROWS:
        ours, base = service[key], baseline[key]
        ratio = ours / base
        print(f"{label:38} {ours:10.1f} {base:12.1f} {ratio:7.2f}  {goal}")
    print("ratio: HTTP+Ray figure over the SQLite-only figure in this run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--submissions", type=int, default=3000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--lists", type=int, default=2000)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument(
        "--churn",
        type=float,
        default=10.0,
        help="jobs submitted per second while the lists are measured",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tq-bench-") as tmp:
        data_dir = Path(tmp)
        baseline = asyncio.run(measure_baseline(args, data_dir))
        service = asyncio.run(measure_service(args, data_dir))
    print_table(service, baseline)


if __name__ == "__main__":
    sys.exit(main())
