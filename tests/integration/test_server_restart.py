"""The real server process: start, kill -9, restart; nothing lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from transcriptarr.actors.settings import SettingsService
from transcriptarr.store import db
from transcriptarr.store.jobs import JobStore

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m transcriptarr server`` in its own process group."""

    def __init__(self, data_dir: Path, port: int, *extra: str) -> None:
        env = dict(os.environ)
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        self.port = port
        self.log_path = data_dir / f"server-{port}-{time.time_ns()}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "transcriptarr",
                "server",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_healthy(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log_path.read_text()
                try:
                    async with session.get(f"{self.base}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
        raise AssertionError("server did not become healthy")

    def kill_hard(self) -> None:
        """kill -9 of the server and of every process it started."""
        parent = psutil.Process(self.process.pid)
        family = [parent, *parent.children(recursive=True)]
        for proc in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(family, timeout=30)
        self.log.close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose settings start no workers (jobs stay put)."""

    async def prepare() -> None:
        service = SettingsService(tmp_path / "transcriptarr.db")
        await service.start()
        await service.bulk_update({"worker_cpu_count": "0"})
        await service.close()

    asyncio.run(prepare())
    return tmp_path


async def claim_directly(db_path: Path, count: int) -> list[str]:
    """Claim jobs through the store's atomic statement, as a second process."""
    writer = await db.connect(db_path)
    reader = await db.connect(db_path, readonly=True)
    store = JobStore(writer, reader)
    claimed = []
    for index in range(count):
        found = await store.claim_next(
            f"outside-{index}", f"lease-{index}", now_s=time.time(), lease_s=600
        )
        assert found is not None
        claimed.append(found.job.id)
    await writer.close()
    await reader.close()
    return claimed


async def all_jobs(base: str) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as session:
        url = f"{base}/api/jobs?page_size=500"
        async with session.get(url) as response:
            assert response.status == 200
            body = await response.json()
    jobs: list[dict[str, object]] = body["jobs"]
    return jobs


async def test_kill_9_loses_no_acknowledged_job_and_requeues_claimed_ones(
    data_dir: Path,
) -> None:
    server = ServerProcess(data_dir, free_port())
    try:
        await server.wait_healthy()
        acknowledged = []
        async with aiohttp.ClientSession() as session:
            for index in range(40):
                body = {
                    "file_path": f"/media/show/e{index:02d}.mkv",
                    "file_name": f"e{index:02d}.mkv",
                    "target_lang": "eng",
                }
                async with session.post(f"{server.base}/api/jobs", json=body) as r:
                    assert r.status == 201
                    acknowledged.append((await r.json())["id"])
        claimed = await claim_directly(data_dir / "transcriptarr.db", 10)
    finally:
        server.kill_hard()

    restarted = ServerProcess(data_dir, free_port(), "--workers", "2")
    try:
        await restarted.wait_healthy()
        jobs = await all_jobs(restarted.base)
        ids = [job["id"] for job in jobs]
        assert sorted(ids) == sorted(acknowledged)
        by_id = {job["id"]: job for job in jobs}
        for job_id in claimed:
            assert by_id[job_id]["status"] == "queued"
            assert by_id[job_id]["retry_count"] == 1
        untouched = set(acknowledged) - set(claimed)
        assert {by_id[i]["retry_count"] for i in untouched} == {0}
    finally:
        assert restarted.stop() == 0
    assert "job " in restarted.log_path.read_text()


async def test_sigterm_stops_cleanly_with_no_ray_process_left(data_dir: Path) -> None:
    server = ServerProcess(data_dir, free_port())
    await server.wait_healthy()
    parent = psutil.Process(server.process.pid)
    family = parent.children(recursive=True)
    assert family, "the server started no Ray processes"
    assert server.stop() == 0
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, [p.name() for p in alive]
