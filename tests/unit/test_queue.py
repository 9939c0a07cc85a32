"""The job board's logic, driven as a worker will drive it, without Ray."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from tests.clock import FakeClock
from transcriptarr.actors.queue import JobBoard, QueuePolicy
from transcriptarr.errors import Conflict, InvalidInput, LeaseLost, NotFound
from transcriptarr.models import JobCreate, JobResult, JobStatus, ProgressReport
from transcriptarr.store import db


def create(name: str, **fields: object) -> JobCreate:
    return JobCreate.model_validate(
        {"file_path": f"/media/{name}", "file_name": name, "target_lang": "spa"}
        | fields
    )


def result(**fields: object) -> JobResult:
    return JobResult.model_validate(
        {"output_path": "/media/a.es.srt"}
        | fields
        | {"segments_count": fields.get("segments_count", 3)}
    )


async def test_submitted_job_is_queued_with_spec_defaults(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    assert job.status is JobStatus.QUEUED
    assert job.quality_preset == "fast"
    assert job.transcribe_or_translate == "transcribe"
    assert job.progress == 0.0
    assert (await board.get(job.id)) == job


async def test_duplicate_active_job_for_same_file_and_language_conflicts(
    board: JobBoard,
) -> None:
    await board.submit(create("a.mkv"))
    with pytest.raises(Conflict):
        await board.submit(create("a.mkv"))
    other_language = await board.submit(create("a.mkv", target_lang="fra"))
    assert other_language.target_lang == "fra"


async def test_file_can_be_queued_again_once_its_job_is_done(board: JobBoard) -> None:
    first = await board.submit(create("a.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    await board.complete(first.id, claimed.lease_id, result())
    second = await board.submit(create("a.mkv"))
    assert second.id != first.id


async def test_claim_takes_highest_priority_then_oldest(board: JobBoard) -> None:
    low = await board.submit(create("low.mkv", priority=1))
    old_high = await board.submit(create("high1.mkv", priority=9))
    new_high = await board.submit(create("high2.mkv", priority=9))
    order = []
    for _ in range(3):
        claimed = await board.claim("w1", timeout_s=0)
        assert claimed is not None
        order.append(claimed.job.id)
    assert order == [old_high.id, new_high.id, low.id]


async def test_waiting_claimer_gets_a_new_job_at_once(board: JobBoard) -> None:
    waiter = asyncio.create_task(board.claim("w1", timeout_s=30))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    job = await board.submit(create("a.mkv"))
    claimed = await asyncio.wait_for(waiter, timeout=5)
    assert claimed is not None and claimed.job.id == job.id


async def test_claim_returns_none_when_nothing_arrives(board: JobBoard) -> None:
    assert await board.claim("w1", timeout_s=0.05) is None


async def test_concurrent_claimers_never_share_a_job(board: JobBoard) -> None:
    submitted = await board.submit_many([create(f"{i}.mkv") for i in range(40)])
    claims = await asyncio.gather(
        *(board.claim(f"w{i}", timeout_s=0.2) for i in range(60))
    )
    won = [c.job.id for c in claims if c is not None]
    assert len(won) == len(set(won)) == 40
    assert set(won) == {job.id for job in submitted if job is not None}


async def test_completion_from_a_lost_lease_is_rejected(
    board: JobBoard, clock: FakeClock
) -> None:
    job = await board.submit(create("a.mkv"))
    first = await board.claim("w1", timeout_s=0)
    assert first is not None
    clock.advance(31)
    assert await board.expire_leases() == 1
    clock.advance(100)
    second = await board.claim("w2", timeout_s=0)
    assert second is not None and second.job.id == job.id
    with pytest.raises(LeaseLost):
        await board.complete(job.id, first.lease_id, result())
    done = await board.complete(job.id, second.lease_id, result())
    assert done.status is JobStatus.COMPLETED
    assert done.worker_id == "w2"


async def test_transient_failures_retry_with_backoff_then_fail(
    board: JobBoard, clock: FakeClock
) -> None:
    job = await board.submit(create("a.mkv"))
    delays = []
    for attempt in range(3):
        claimed = await board.claim("w1", timeout_s=0)
        assert claimed is not None, f"attempt {attempt} could not claim"
        after = await board.fail(
            job.id, claimed.lease_id, "decoder hiccup", transient=True
        )
        if after.status is JobStatus.FAILED:
            break
        assert await board.claim("w1", timeout_s=0) is None  # still in backoff
        delays.append(after.retry_count)
        clock.advance(1000)
    final = await board.get(job.id)
    assert final.status is JobStatus.FAILED
    assert final.error == "decoder hiccup"
    assert final.retry_count == 2
    assert delays == [1, 2]


def test_backoff_doubles_and_is_capped() -> None:
    policy = QueuePolicy(backoff_base_s=5, backoff_max_s=30)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


async def test_permanent_failure_fails_at_once(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    failed = await board.fail(job.id, claimed.lease_id, "not a media file")
    assert failed.status is JobStatus.FAILED
    assert failed.retry_count == 0


async def test_progress_renews_lease_and_is_written_behind(
    board: JobBoard, clock: FakeClock
) -> None:
    job = await board.submit(create("a.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    report = ProgressReport(stage="transcribing", progress=42.5, eta_seconds=30)
    clock.advance(25)
    assert await board.progress(job.id, claimed.lease_id, report)
    clock.advance(25)
    assert await board.expire_leases() == 0  # renewed at 25 s, good until 55 s
    assert (await board.get(job.id)).progress == 0  # not written through
    await board.close()  # flushes what was written behind
    writer = await db.connect(board._db_path, readonly=True)
    async with writer.execute(
        "SELECT progress, current_stage FROM jobs WHERE id = ?", (job.id,)
    ) as cur:
        assert tuple(await cur.fetchone()) == (42.5, "transcribing")
    await writer.close()
    await board.start()
    stored = await board.get(job.id)
    assert stored.status is JobStatus.QUEUED  # a restart returns it to the queue
    assert stored.retry_count == 1


async def test_flushed_progress_is_visible(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    await board.progress(
        job.id, claimed.lease_id, {"stage": "transcribing", "progress": 50}
    )
    await asyncio.sleep(1.3)
    stored = await board.get(job.id)
    assert stored.progress == 50
    assert stored.current_stage == "transcribing"


async def test_cancel_tells_the_worker_to_stop(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    cancelled = await board.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    report = ProgressReport(stage="transcribing", progress=10)
    assert await board.progress(job.id, claimed.lease_id, report) is False
    with pytest.raises(LeaseLost):
        await board.complete(job.id, claimed.lease_id, result())


async def test_cancel_of_terminal_job_is_refused(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    await board.cancel(job.id)
    with pytest.raises(InvalidInput):
        await board.cancel(job.id)


async def test_retry_puts_a_failed_job_back(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    with pytest.raises(InvalidInput):
        await board.retry(job.id)
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    await board.fail(job.id, claimed.lease_id, "broken")
    retried = await board.retry(job.id)
    assert retried.status is JobStatus.QUEUED
    assert retried.error is None


async def test_unknown_job_is_not_found(board: JobBoard) -> None:
    with pytest.raises(NotFound):
        await board.get("missing")
    with pytest.raises(NotFound):
        await board.cancel("missing")


async def test_restart_requeues_processing_jobs_counting_the_attempt(
    db_path: Path, clock: FakeClock
) -> None:
    first = JobBoard(db_path, clock=clock)
    await first.start()
    jobs = await first.submit_many([create(f"{i}.mkv") for i in range(5)])
    for _ in range(2):
        assert await first.claim("w1", timeout_s=0) is not None
    # Simulate a crash: drop the board without a clean close of its leases.
    await first.close()
    second = JobBoard(db_path, clock=clock)
    await second.start()
    stats = await second.stats()
    assert stats.queued == 5 and stats.processing == 0
    page = await second.list_jobs(None, 1, 50)
    assert sorted(j.id for j in page.jobs) == sorted(j.id for j in jobs if j)
    assert sorted(j.retry_count for j in page.jobs) == [0, 0, 0, 1, 1]
    await second.close()


async def test_clear_completed_deletes_only_completed(board: JobBoard) -> None:
    done = await board.submit(create("a.mkv"))
    await board.submit(create("b.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None and claimed.job.id == done.id
    await board.complete(done.id, claimed.lease_id, result())
    assert await board.clear_completed() == 1
    stats = await board.stats()
    assert (stats.total_jobs, stats.completed, stats.queued) == (1, 0, 1)


async def test_list_filters_and_paginates_newest_first(board: JobBoard) -> None:
    for i in range(7):
        await board.submit(create(f"{i}.mkv"))
    page = await board.list_jobs(JobStatus.QUEUED, 2, 3)
    assert page.total == 7
    assert [j.file_name for j in page.jobs] == ["3.mkv", "2.mkv", "1.mkv"]
    empty = await board.list_jobs(JobStatus.FAILED, 1, 50)
    assert empty.total == 0 and empty.jobs == []


async def test_dead_worker_jobs_return_to_queue(board: JobBoard) -> None:
    job = await board.submit(create("a.mkv"))
    assert await board.claim("w-dead", timeout_s=0) is not None
    assert await board.release_worker("w-dead", "worker process died") == 1
    stored = await board.get(job.id)
    assert stored.status is JobStatus.QUEUED
    assert stored.retry_count == 1
    assert stored.error == "worker process died"


async def test_each_transition_logs_one_fixed_line(
    board: JobBoard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transcriptarr.actors.queue")
    job = await board.submit(create("a.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    await board.complete(job.id, claimed.lease_id, result(processing_time_seconds=2.5))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"job {job.id} queued file=a.mkv",
        f"job {job.id} started file=a.mkv worker=w1 attempt=1",
        f"job {job.id} done file=a.mkv worker=w1 elapsed_s=2.5 segments=3",
    ]


async def test_dead_worker_after_a_cancel_still_releases_its_current_job(
    board: JobBoard,
) -> None:
    first = await board.submit(create("a.mkv"))
    second = await board.submit(create("b.mkv"))
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None and claimed.job.id == first.id
    await board.cancel(first.id)
    again = await board.claim("w1", timeout_s=0)
    assert again is not None and again.job.id == second.id
    assert await board.release_worker("w1", "worker process died") == 1
    assert (await board.get(second.id)).status is JobStatus.QUEUED


async def test_waiting_claim_of_a_released_worker_leases_nothing(
    board: JobBoard,
) -> None:
    ghost = asyncio.create_task(board.claim("w-dead", timeout_s=30))
    live = asyncio.create_task(board.claim("w-live", timeout_s=30))
    await asyncio.sleep(0.05)
    await board.release_worker("w-dead", "worker process died")
    assert await asyncio.wait_for(ghost, timeout=5) is None
    job = await board.submit(create("a.mkv"))
    claimed = await asyncio.wait_for(live, timeout=5)
    assert claimed is not None and claimed.job.id == job.id


async def test_cancel_racing_a_claim_leaves_every_other_job_claimable(
    board: JobBoard,
) -> None:
    first = await board.submit(create("a.mkv"))
    second = await board.submit(create("b.mkv"))
    cancelled, claimed = await asyncio.gather(
        board.cancel(first.id), board.claim("w1", timeout_s=0)
    )
    assert cancelled.status is JobStatus.CANCELLED
    stats = await board.stats()
    assert stats.cancelled == 1
    assert stats.queued + stats.processing == 1
    if claimed is None or claimed.job.id == first.id:
        again = await board.claim("w2", timeout_s=0)
        assert again is not None and again.job.id == second.id
    assert (await board.stats()).processing == 1


async def test_pages_as_json_carry_a_version_that_grows_with_changes(
    board: JobBoard,
) -> None:
    version, body = await board.list_jobs_json(None, 1, 50)
    assert orjson.loads(body) == {"jobs": [], "total": 0, "page": 1, "page_size": 50}
    waiter = asyncio.create_task(board.wait_for_change(version, 5))
    job = await board.submit(create("a.mkv"))
    newer = await asyncio.wait_for(waiter, 5)
    assert newer > version
    _, body = await board.list_jobs_json(JobStatus.QUEUED, 1, 50)
    page = orjson.loads(body)
    assert page["total"] == 1 and page["jobs"][0]["id"] == job.id
    assert await board.wait_for_change(newer, 0.01) == newer
