"""Settings API over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from transcriptarr.catalog import DEFAULTS

Client = TestClient[Any, Any]

SETTING_FIELDS = {
    "id",
    "key",
    "value",
    "description",
    "category",
    "value_type",
    "created_at",
    "updated_at",
}


async def test_defaults_are_listed_with_spec_fields(api: Client) -> None:
    settings = await (await api.get("/api/settings")).json()
    assert {s["key"] for s in settings} >= {d.key for d in DEFAULTS}
    assert set(settings[0]) == SETTING_FIELDS
    workers = await (await api.get("/api/settings?category=workers")).json()
    assert workers and {s["category"] for s in workers} == {"workers"}


async def test_get_update_and_missing_setting(api: Client) -> None:
    found = await (await api.get("/api/settings/worker_cpu_count")).json()
    assert (found["value"], found["value_type"]) == ("1", "integer")
    updated = await api.put("/api/settings/worker_cpu_count", json={"value": "2"})
    assert updated.status == 200
    body = await updated.json()
    assert body["value"] == "2" and body["updated_at"] is not None
    assert (await api.get("/api/settings/nope")).status == 404
    missing = await api.put("/api/settings/nope", json={"value": "1"})
    assert missing.status == 404


async def test_value_of_wrong_type_is_400_and_nothing_changes(api: Client) -> None:
    response = await api.put("/api/settings/worker_cpu_count", json={"value": "many"})
    assert response.status == 400
    assert "worker_cpu_count" in (await response.json())["detail"]
    bulk = await api.post(
        "/api/settings/bulk-update",
        json={"settings": {"worker_gpu_count": "1", "scanner_enabled": "maybe"}},
    )
    assert bulk.status == 400
    gpu = await (await api.get("/api/settings/worker_gpu_count")).json()
    assert gpu["value"] == "0"


async def test_bulk_update_sets_all_values(api: Client) -> None:
    response = await api.post(
        "/api/settings/bulk-update",
        json={
            "settings": {
                "worker_cpu_count": "2",
                "worker_gpu_count": "1",
                "scanner_enabled": "true",
            }
        },
    )
    assert await response.json() == {"message": "Updated 3 settings successfully"}
    enabled = await (await api.get("/api/settings/scanner_enabled")).json()
    assert enabled["value"] == "true"


async def test_create_conflict_and_delete(api: Client) -> None:
    body = {
        "key": "custom_setting",
        "value": "value",
        "description": "Custom setting description",
        "category": "general",
        "value_type": "string",
    }
    created = await api.post("/api/settings", json=body)
    assert created.status == 201
    assert (await created.json())["key"] == "custom_setting"
    assert (await api.post("/api/settings", json=body)).status == 409
    deleted = await api.delete("/api/settings/custom_setting")
    assert await deleted.json() == {
        "message": "Setting 'custom_setting' deleted successfully"
    }
    assert (await api.delete("/api/settings/custom_setting")).status == 404


async def test_init_defaults_is_idempotent_and_keeps_user_values(api: Client) -> None:
    await api.put("/api/settings/worker_cpu_count", json={"value": "3"})
    await api.delete("/api/settings/queue_lease_s")
    for _ in range(2):
        response = await api.post("/api/settings/init-defaults")
        assert await response.json() == {
            "message": "Default settings initialized successfully"
        }
    kept = await (await api.get("/api/settings/worker_cpu_count")).json()
    assert kept["value"] == "3"
    restored = await api.get("/api/settings/queue_lease_s")
    assert restored.status == 200
