"""Running the service: the Ray side, the front-end processes, clean shutdown.

One process (this one) owns the local Ray head and the actors. The front end
runs here when ``--workers 1``; with more, each front-end process joins the
cluster as its own Ray driver and listens on the same port (SO_REUSEPORT), all
calling the same named actors. ``--reload`` runs the front end in a child
process that is replaced whenever a source file changes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path

import ray
from aiohttp import web

from transcriptarr import logs
from transcriptarr.actors import cluster
from transcriptarr.config import ServerConfig
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


def connect_services(config: ServerConfig) -> Services:
    """Proxies of the named actors, for a front end in this process."""
    queue = cluster.lookup(cluster.QUEUE_ACTOR)
    settings = cluster.lookup(cluster.SETTINGS_ACTOR)
    if queue is None or settings is None:
        raise RuntimeError("The queue and settings actors are not running")
    return Services(
        queue=queue,
        settings=settings,
        scanner=cluster.lookup(cluster.SCANNER_ACTOR),
        pool=cluster.lookup(cluster.POOL_ACTOR),
        host=config.host,
        port=config.port,
    )


async def serve_http(config: ServerConfig, stop: asyncio.Event) -> None:
    """Serve the REST API until ``stop`` is set."""
    from transcriptarr.http.security import RedactingAccessLogger

    app = create_app(connect_services(config))
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_port=config.workers > 1)
    await site.start()
    logger.info("serving on http://%s:%d", config.host, config.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _front_end_main(config: ServerConfig, address: str) -> None:
    """Entry point of a front-end child process."""
    logs.configure(config.log_level)
    cluster.init_ray(address)

    async def run() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await serve_http(config, stop)

    try:
        asyncio.run(run())
    finally:
        ray.shutdown()


def _spawn_front_ends(config: ServerConfig, address: str) -> list[BaseProcess]:
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    for index in range(config.workers):
        process = context.Process(
            target=_front_end_main,
            args=(config, address),
            name=f"transcriptarr-http-{index}",
        )
        process.start()
        processes.append(process)
    return processes


def _stop_front_ends(processes: list[BaseProcess], timeout_s: float = 10.0) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout_s)
        if process.is_alive():
            process.kill()
            process.join()


def _source_snapshot() -> dict[Path, float]:
    return {path: path.stat().st_mtime for path in PACKAGE_DIR.rglob("*.py")}


async def _wait_for_change(stop: asyncio.Event, interval_s: float = 1.0) -> bool:
    """True when a source file changed, False when ``stop`` was set."""
    before = _source_snapshot()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            if _source_snapshot() != before:
                return True
    return False


async def _supervise(config: ServerConfig, stop: asyncio.Event) -> None:
    address = cluster.gcs_address()
    while True:
        processes = _spawn_front_ends(config, address)
        changed = await _wait_for_change(stop) if config.reload else False
        if not changed:
            await stop.wait()
        await asyncio.to_thread(_stop_front_ends, processes)
        if not changed:
            return
        logger.info("source changed; restarting the front end")


async def run_server(config: ServerConfig) -> None:
    """Start Ray and the actors, serve until SIGINT/SIGTERM, then stop cleanly."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    cluster.init_ray(config.ray_address, token_path=config.data_dir / "ray_auth_token")
    handles = await cluster.create_actors(config.data_dir)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        if config.workers == 1 and not config.reload:
            await serve_http(config, stop)
        else:
            await _supervise(config, stop)
    finally:
        logger.info("shutting down")
        await cluster.close_actors(handles)


def main(config: ServerConfig) -> None:
    logs.configure(config.log_level)
    config = replace(config, data_dir=config.data_dir.resolve())
    try:
        asyncio.run(run_server(config))
    finally:
        ray.shutdown()
        logger.info("stopped")
