"""Jobs API over HTTP, against the real app with in-process actors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.unit.conftest import job_body
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.http.caching import PageCache
from transcriptarr.models import Job

Client = TestClient[Any, Any]

JOB_FIELDS = set(Job.model_fields)


async def test_create_job_answers_201_with_every_spec_field(api: Client) -> None:
    response = await api.post("/api/jobs", json=job_body(source_lang="ja", priority=10))
    assert response.status == 201
    job = await response.json()
    assert set(job) == JOB_FIELDS
    assert job["status"] == "queued"
    assert job["source_lang"] == "jpn"
    assert job["target_lang"] == "spa"
    assert job["quality_preset"] == "fast"
    assert job["transcribe_or_translate"] == "transcribe"
    assert job["priority"] == 10
    assert job["job_type"] == "transcription"


async def test_invalid_quality_preset_is_400_naming_the_field(api: Client) -> None:
    response = await api.post("/api/jobs", json=job_body(quality_preset="ultra"))
    assert response.status == 400
    body = await response.json()
    assert body["field"] == "quality_preset"
    assert "quality_preset" in body["detail"]


async def test_bad_bodies_are_400_not_500(api: Client) -> None:
    cases: list[tuple[str, Any]] = [
        ("not json", None),
        ("[]", None),
        ("", None),
    ]
    for raw, _ in cases:
        response = await api.post(
            "/api/jobs", data=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, raw
        assert "detail" in await response.json()
    missing = await api.post("/api/jobs", json={"file_name": "a.mkv"})
    assert missing.status == 400
    assert (await missing.json())["field"] == "file_path"
    bad_lang = await api.post("/api/jobs", json=job_body(target_lang="klingonish"))
    assert bad_lang.status == 400
    assert (await bad_lang.json())["field"] == "target_lang"
    extra = await api.post("/api/jobs", json=job_body(colour="blue"))
    assert extra.status == 400
    wrong_type = await api.post("/api/jobs", json=job_body(priority="high"))
    assert wrong_type.status == 400
    assert (await wrong_type.json())["field"] == "priority"


async def test_duplicate_job_is_409(api: Client) -> None:
    assert (await api.post("/api/jobs", json=job_body())).status == 201
    response = await api.post("/api/jobs", json=job_body())
    assert response.status == 409
    assert "already exists" in (await response.json())["detail"]


async def test_get_and_missing_job(api: Client) -> None:
    created = await (await api.post("/api/jobs", json=job_body())).json()
    found = await api.get(f"/api/jobs/{created['id']}")
    assert found.status == 200
    assert (await found.json()) == created
    missing = await api.get("/api/jobs/nope")
    assert missing.status == 404
    assert (await missing.json())["detail"] == "Job nope not found"


async def test_list_paginates_and_filters(api: Client) -> None:
    for i in range(5):
        await api.post("/api/jobs", json=job_body(f"{i}.mkv"))
    page = await (await api.get("/api/jobs?page=2&page_size=2")).json()
    assert set(page) == {"jobs", "total", "page", "page_size"}
    assert (page["total"], page["page"], page["page_size"]) == (5, 2, 2)
    assert [j["file_name"] for j in page["jobs"]] == ["2.mkv", "1.mkv"]
    failed = await (await api.get("/api/jobs?status_filter=failed")).json()
    assert failed["total"] == 0 and failed["jobs"] == []
    for query in ("page=0", "page_size=501", "status_filter=lost", "page=x"):
        response = await api.get(f"/api/jobs?{query}")
        assert response.status == 400, query


async def test_stats_count_each_status(api: Client) -> None:
    for i in range(3):
        await api.post("/api/jobs", json=job_body(f"{i}.mkv"))
    stats = await (await api.get("/api/jobs/stats")).json()
    assert stats == {
        "total_jobs": 3,
        "queued": 3,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }


async def test_cancel_by_delete_and_post_and_terminal_is_400(api: Client) -> None:
    first = await (await api.post("/api/jobs", json=job_body("a.mkv"))).json()
    second = await (await api.post("/api/jobs", json=job_body("b.mkv"))).json()
    response = await api.delete(f"/api/jobs/{first['id']}")
    assert response.status == 200
    assert await response.json() == {
        "message": f"Job {first['id']} cancelled successfully"
    }
    response = await api.post(f"/api/jobs/{second['id']}/cancel")
    assert response.status == 200
    again = await api.delete(f"/api/jobs/{first['id']}")
    assert again.status == 400
    assert (await api.post("/api/jobs/nope/cancel")).status == 404
    assert (await api.delete("/api/jobs/nope")).status == 404


async def test_retry_only_failed_jobs(api: Client, board: JobBoard) -> None:
    created = await (await api.post("/api/jobs", json=job_body())).json()
    not_failed = await api.post(f"/api/jobs/{created['id']}/retry")
    assert not_failed.status == 400
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    await board.fail(created["id"], claimed.lease_id, "broken file")
    retried = await api.post(f"/api/jobs/{created['id']}/retry")
    assert retried.status == 200
    body = await retried.json()
    assert body["status"] == "queued" and body["error"] is None
    assert (await api.post("/api/jobs/nope/retry")).status == 404


async def test_clear_removes_completed_jobs(api: Client, board: JobBoard) -> None:
    created = await (await api.post("/api/jobs", json=job_body())).json()
    claimed = await board.claim("w1", timeout_s=0)
    assert claimed is not None
    await board.complete(
        created["id"], claimed.lease_id, {"output_path": None, "segments_count": 0}
    )
    response = await api.post("/api/jobs/queue/clear")
    assert await response.json() == {"message": "Cleared 1 completed jobs"}
    assert (await api.get(f"/api/jobs/{created['id']}")).status == 404


async def test_unknown_route_and_method_answer_json(api: Client) -> None:
    missing = await api.get("/api/nothing-here")
    assert missing.status == 404
    assert "detail" in await missing.json()
    wrong = await api.put("/api/jobs/stats")
    assert wrong.status == 405


async def test_file_path_is_resolved_and_confined_to_the_allowed_roots(
    api: Client, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (media / "link.mkv").symlink_to(tmp_path / "elsewhere" / "x.mkv")
    update = await api.put("/api/settings/filesystem_roots", json={"value": str(media)})
    assert update.status == 200
    inside = await api.post(
        "/api/jobs",
        json=job_body(file_path=f"{media}/show/../ep1.mkv", file_name="ep1.mkv"),
    )
    assert inside.status == 201
    assert (await inside.json())["file_path"] == f"{media}/ep1.mkv"
    for escape in (
        f"{media}/../elsewhere/x.mkv",
        f"{media}/link.mkv",
        f"{media}-evil/x.mkv",
        "relative/x.mkv",
    ):
        response = await api.post(
            "/api/jobs", json=job_body(file_path=escape, file_name="x.mkv")
        )
        assert response.status == 403, escape
    stats = await (await api.get("/api/jobs/stats")).json()
    assert stats["total_jobs"] == 1


async def test_job_list_shows_changes_made_outside_this_front_end(
    api: Client, board: JobBoard
) -> None:
    await api.post("/api/jobs", json=job_body())

    async def first_status() -> str:
        page = await (await api.get("/api/jobs")).json()
        status: str = page["jobs"][0]["status"]
        return status

    assert await first_status() == "queued"
    assert await first_status() == "queued"  # served again, now from memory
    # A worker claims through the board, not through this front end.
    assert await board.claim("w1", timeout_s=0) is not None
    for _ in range(100):
        if await first_status() == "processing":
            break
        await asyncio.sleep(0.05)
    assert await first_status() == "processing"


async def test_cached_page_is_fresh_stale_briefly_then_read_again() -> None:
    board_reads: list[int] = []
    board_version = 5

    async def fetch() -> tuple[int, bytes]:
        board_reads.append(board_version)
        return board_version, f"v{board_version}".encode()

    cache = PageCache(ActorProxy(object()), max_stale_s=0.2)
    assert await cache.page("p", fetch) == b"v5"  # no long poll yet: no cache
    cache._latest_version = 5
    assert await cache.page("p", fetch) == b"v5"
    assert await cache.page("p", fetch) == b"v5"
    assert board_reads == [5, 5]  # the second came from memory
    board_version = cache._latest_version = 6
    assert await cache.page("p", fetch) == b"v5"  # stale, refreshed behind
    await asyncio.sleep(0.01)
    assert await cache.page("p", fetch) == b"v6"
    board_version = cache._latest_version = 7
    await asyncio.sleep(0.3)
    assert await cache.page("p", fetch) == b"v7"  # too old to serve stale
    cache.invalidate()
    assert await cache.page("p", fetch) == b"v7"
    assert board_reads == [5, 5, 6, 7, 7]
