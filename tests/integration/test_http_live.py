"""The REST API against real actors on the session's Ray cluster."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


def job_body(name: str) -> dict[str, str]:
    return {"file_path": f"/media/{name}", "file_name": name, "target_lang": "es"}


async def test_job_lifecycle_over_http_through_ray(live_api: Client) -> None:
    created = await live_api.post("/api/jobs", json=job_body("a.mkv"))
    assert created.status == 201
    job = await created.json()
    assert job["target_lang"] == "spa"

    fetched = await live_api.get(f"/api/jobs/{job['id']}")
    assert await fetched.json() == job
    listed = await (await live_api.get("/api/jobs")).json()
    assert listed["total"] == 1 and listed["jobs"] == [job]

    duplicate = await live_api.post("/api/jobs", json=job_body("a.mkv"))
    assert duplicate.status == 409
    cancelled = await live_api.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status == 200
    again = await live_api.delete(f"/api/jobs/{job['id']}")
    assert again.status == 400
    assert "cancelled" in (await again.json())["detail"]


async def test_actor_errors_keep_their_status_through_ray(live_api: Client) -> None:
    missing = await live_api.get("/api/jobs/unknown")
    assert missing.status == 404
    assert await missing.json() == {"detail": "Job unknown not found"}
    retry = await live_api.post("/api/jobs/unknown/retry")
    assert retry.status == 404
    setting = await live_api.put("/api/settings/nope", json={"value": "1"})
    assert setting.status == 404
    bad_value = await live_api.put(
        "/api/settings/queue_max_retries", json={"value": "x"}
    )
    assert bad_value.status == 400


async def test_health_and_status_report_live_parts(live_api: Client) -> None:
    health = await live_api.get("/health")
    assert health.status == 200
    body = await health.json()
    assert (body["status"], body["database"], body["ray"]) == (
        "healthy",
        "connected",
        "connected",
    )
    status = await (await live_api.get("/api/status")).json()
    assert status["queue"]["total_jobs"] == 0


async def test_concurrent_posts_create_each_job_once(live_api: Client) -> None:
    import asyncio

    names = [f"{i % 20}.mkv" for i in range(60)]
    responses = await asyncio.gather(
        *(live_api.post("/api/jobs", json=job_body(name)) for name in names)
    )
    codes = sorted(r.status for r in responses)
    assert codes.count(201) == 20
    assert codes.count(409) == 40
    stats = await (await live_api.get("/api/jobs/stats")).json()
    assert stats["queued"] == 20
