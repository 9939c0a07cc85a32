"""System endpoints and API documentation over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from transcriptarr.actors.queue import JobBoard

Client = TestClient[Any, Any]


async def test_root_describes_the_api(api: Client) -> None:
    body = await (await api.get("/")).json()
    assert body["name"] == "Transcriptarr API"
    assert body["status"] == "running"


async def test_health_reports_database_and_queue(api: Client) -> None:
    await api.post(
        "/api/jobs",
        json={"file_path": "/m/a.mkv", "file_name": "a.mkv", "target_lang": "en"},
    )
    response = await api.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "healthy"
    assert body["database"] == "connected"
    assert body["queue_size"] == 1
    assert body["workers"] == 0


async def test_health_is_503_when_the_database_breaks(
    api: Client, board: JobBoard
) -> None:
    for conn in board._connections:
        await conn.close()
    response = await api.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unhealthy"
    assert body["database"].startswith("error")


async def test_status_has_the_spec_shape(api: Client) -> None:
    body = await (await api.get("/api/status")).json()
    assert set(body) == {"system", "workers", "queue", "scanner"}
    assert body["system"]["status"] == "running"
    assert body["queue"]["total_jobs"] == 0
    assert set(body["workers"]) >= {"total_workers", "idle_workers", "busy_workers"}
    assert set(body["scanner"]) == {
        "scheduler_enabled",
        "scheduler_running",
        "next_scan_time",
        "watcher_enabled",
        "watcher_running",
    }


async def test_openapi_document_describes_every_route(api: Client) -> None:
    doc = await (await api.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    create = doc["paths"]["/api/jobs"]["post"]
    assert set(create["responses"]) >= {"201", "400", "409"}
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema_ref == {"$ref": "#/components/schemas/JobCreate"}
    assert "JobCreate" in doc["components"]["schemas"]
    assert "Job" in doc["components"]["schemas"]
    params = doc["paths"]["/api/jobs"]["get"]["parameters"]
    assert {p["name"] for p in params} == {"status_filter", "page", "page_size"}
    operation_ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"], f"{method} {path} documents no response"
            operation_ids.append(op["operationId"])
    assert len(operation_ids) == len(set(operation_ids))


async def test_docs_pages_load_their_assets_locally(api: Client) -> None:
    for page, asset in (
        ("/docs", "/docs/static/swagger-ui-dist/swagger-ui-bundle.js"),
        ("/redoc", "/docs/static/redoc/bundles/redoc.standalone.js"),
    ):
        html = await (await api.get(page)).text()
        assert asset in html
        assert "http" not in html.replace("/openapi.json", "")
        response = await api.get(asset)
        assert response.status == 200
        assert len(await response.read()) > 100_000


async def test_openapi_document_is_valid_openapi_3_1(api: Client) -> None:
    from openapi_spec_validator import validate

    doc = await (await api.get("/openapi.json")).json()
    validate(doc)
    spec_paths = {
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/retry",
        "/api/jobs/{job_id}/cancel",
        "/api/jobs/queue/clear",
        "/api/jobs/stats",
        "/api/settings",
        "/api/settings/{key}",
        "/api/settings/bulk-update",
        "/api/settings/init-defaults",
        "/health",
        "/api/status",
        "/",
    }
    assert spec_paths <= set(doc["paths"])


async def test_provider_status_answers_the_version_even_with_a_key_set(
    api: Client,
) -> None:
    await api.put("/api/settings/api_key", json={"value": "s3cret-key"})
    response = await api.get("/status")
    assert response.status == 200
    assert await response.json() == {"version": "Transcriptarr 1.0.0"}
    assert (await api.get("/api/status")).status == 401
