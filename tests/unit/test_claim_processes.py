"""Claims racing across processes on one SQLite file never share a job."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

from transcriptarr.actors.queue import JobBoard
from transcriptarr.models import JobCreate
from transcriptarr.store import db
from transcriptarr.store.jobs import JobStore

JOBS = 120


def _claim_all_in_another_process(
    db_path: str, results: multiprocessing.Queue[list[str]]
) -> None:
    async def run() -> list[str]:
        writer = await db.connect(Path(db_path))
        reader = await db.connect(Path(db_path), readonly=True)
        store = JobStore(writer, reader)
        won: list[str] = []
        while True:
            claimed = await store.claim_next(
                "other-process", "lease", now_s=1e12, lease_s=60
            )
            if claimed is None:
                break
            won.append(claimed.job.id)
        await writer.close()
        await reader.close()
        return won

    results.put(asyncio.run(run()))


async def test_claimers_in_two_processes_never_receive_the_same_job(
    board: JobBoard, db_path: Path
) -> None:
    bodies = [
        JobCreate(file_path=f"/m/{i}.mkv", file_name=f"{i}.mkv", target_lang="spa")
        for i in range(JOBS)
    ]
    await board.submit_many(list(bodies))
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[list[str]] = context.Queue()
    other = context.Process(
        target=_claim_all_in_another_process, args=(str(db_path), results)
    )
    other.start()
    mine: list[str] = []
    while True:
        claims = await asyncio.gather(
            *(
                board.store.claim_next(f"c{i}", f"l{i}", now_s=1e12, lease_s=60)
                for i in range(4)
            )
        )
        found = [c.job.id for c in claims if c is not None]
        if not found:
            break
        mine.extend(found)
    theirs = await asyncio.to_thread(results.get, True, 60)
    await asyncio.to_thread(other.join, 30)
    assert len(mine) == len(set(mine))
    assert not set(mine) & set(theirs)
    assert len(mine) + len(theirs) == JOBS
