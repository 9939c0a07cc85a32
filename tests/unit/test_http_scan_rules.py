"""Scan Rules API over HTTP, the scanner running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.scanner_library import FakeDetector
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(
    db_path: Path, board: JobBoard, settings_service: SettingsService
) -> AsyncIterator[Client]:
    scanner = ScannerService(
        db_path, queue=board, settings=settings_service, detector=FakeDetector()
    )
    await scanner.start()
    services = Services(
        queue=ActorProxy(board),
        settings=ActorProxy(settings_service),
        scanner=ActorProxy(scanner),
    )
    test_client: Client = TestClient(TestServer(create_app(services)))
    await test_client.start_server()
    yield test_client
    await test_client.close()
    await scanner.close()


def rule_body(
    name: str = "Japanese anime without Spanish subs", **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "enabled": True,
        "priority": 10,
        "conditions": {
            "audio_language_is": "jpn",
            "missing_embedded_subtitle_lang": "spa",
            "missing_external_subtitle_lang": "spa",
            "file_extension": ".mkv,.mp4",
        },
        "action": {
            "action_type": "transcribe",
            "target_language": "spa",
            "quality_preset": "fast",
            "job_priority": 5,
        },
    }
    body.update(fields)
    return body


async def create(client: Client, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/scan-rules", json=rule_body(**fields))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def test_created_rule_is_answered_in_the_spec_shape(client: Client) -> None:
    created = await create(client)
    assert created["id"] == 1
    assert created["name"] == "Japanese anime without Spanish subs"
    assert created["enabled"] is True
    assert created["priority"] == 10
    assert created["conditions"] == {
        "audio_language_is": "jpn",
        "audio_language_not": None,
        "audio_track_count_min": None,
        "has_embedded_subtitle_lang": None,
        "missing_embedded_subtitle_lang": "spa",
        "missing_external_subtitle_lang": "spa",
        "file_extension": ".mkv,.mp4",
    }
    assert created["action"] == {
        "action_type": "transcribe",
        "target_language": "spa",
        "quality_preset": "fast",
        "job_priority": 5,
    }
    assert created["created_at"]
    assert created["updated_at"] is None


async def test_languages_are_normalised_to_iso_639_2_t(client: Client) -> None:
    created = await create(
        client,
        conditions={"audio_language_is": "ja", "audio_language_not": "ger,fre"},
        action={"target_language": "es"},
    )
    assert created["conditions"]["audio_language_is"] == "jpn"
    assert created["conditions"]["audio_language_not"] == "deu,fra"
    assert created["action"]["target_language"] == "spa"


async def test_duplicate_name_is_a_conflict(client: Client) -> None:
    await create(client)
    for name in (
        "Japanese anime without Spanish subs",
        "JAPANESE ANIME WITHOUT SPANISH SUBS",
    ):
        response = await client.post("/api/scan-rules", json=rule_body(name))
        assert response.status == 409
        assert "already exists" in (await response.json())["detail"]


@pytest.mark.parametrize(
    ("part", "value", "field"),
    [
        (
            "conditions",
            {"audio_language_is": "xx-nope"},
            "conditions.audio_language_is",
        ),
        (
            "conditions",
            {"missing_external_subtitle_lang": "zzz"},
            "conditions.missing_external_subtitle_lang",
        ),
        ("action", {"target_language": "elvish"}, "action.target_language"),
        (
            "action",
            {"target_language": "spa", "quality_preset": "ultra"},
            "action.quality_preset",
        ),
        (
            "action",
            {"target_language": "spa", "action_type": "dub"},
            "action.action_type",
        ),
    ],
)
async def test_invalid_language_preset_or_action_type_is_a_400_naming_the_field(
    client: Client, part: str, value: dict[str, Any], field: str
) -> None:
    body = rule_body()
    body[part] = value
    response = await client.post("/api/scan-rules", json=body)
    assert response.status == 400
    body = await response.json()
    assert body["field"] == field
    assert body["detail"].startswith(field)


async def test_rule_without_a_body_or_action_is_a_400(client: Client) -> None:
    assert (await client.post("/api/scan-rules")).status == 400
    response = await client.post("/api/scan-rules", json={"name": "no action"})
    assert response.status == 400
    assert (await response.json())["field"] == "action"


async def test_rules_are_listed_by_priority_and_filtered_by_enabled(
    client: Client,
) -> None:
    await create(client, name="low", priority=1)
    await create(client, name="high", priority=20)
    await create(client, name="off", priority=50, enabled=False)
    listed = await (await client.get("/api/scan-rules")).json()
    assert [rule["name"] for rule in listed] == ["off", "high", "low"]
    enabled = await (await client.get("/api/scan-rules?enabled_only=true")).json()
    assert [rule["name"] for rule in enabled] == ["high", "low"]


async def test_rule_is_read_by_id(client: Client) -> None:
    created = await create(client)
    response = await client.get(f"/api/scan-rules/{created['id']}")
    assert response.status == 200
    assert await response.json() == created


async def test_unknown_rule_is_404_on_every_route(client: Client) -> None:
    for method, path, body in (
        ("GET", "/api/scan-rules/99", None),
        ("PUT", "/api/scan-rules/99", {"priority": 1}),
        ("DELETE", "/api/scan-rules/99", None),
        ("POST", "/api/scan-rules/99/toggle", None),
    ):
        response = await client.request(method, path, json=body)
        assert response.status == 404, (method, path)
        assert (await response.json())["detail"] == "Scan rule 99 not found"


async def test_rule_id_that_is_not_a_number_is_a_400(client: Client) -> None:
    response = await client.get("/api/scan-rules/first")
    assert response.status == 400
    assert (await response.json())["field"] == "rule_id"


async def test_update_changes_only_the_fields_given(client: Client) -> None:
    created = await create(client)
    response = await client.put(
        f"/api/scan-rules/{created['id']}",
        json={"priority": 3, "conditions": {"file_extension": "mkv"}},
    )
    assert response.status == 200
    updated = await response.json()
    assert updated["priority"] == 3
    assert updated["conditions"]["file_extension"] == ".mkv"
    assert updated["conditions"]["audio_language_is"] == "jpn"
    assert updated["name"] == created["name"]
    assert updated["action"] == created["action"]
    assert updated["updated_at"] is not None


async def test_update_can_rename_and_change_the_action(client: Client) -> None:
    created = await create(client)
    response = await client.put(
        f"/api/scan-rules/{created['id']}",
        json={
            "name": "Renamed",
            "action": {"target_language": "en", "job_priority": 9},
        },
    )
    updated = await response.json()
    assert updated["name"] == "Renamed"
    assert updated["action"]["target_language"] == "eng"
    assert updated["action"]["job_priority"] == 9
    assert updated["action"]["quality_preset"] == "fast"


async def test_update_to_another_rules_name_is_a_conflict(client: Client) -> None:
    await create(client, name="first")
    second = await create(client, name="second")
    response = await client.put(
        f"/api/scan-rules/{second['id']}", json={"name": "First"}
    )
    assert response.status == 409


async def test_update_with_an_invalid_language_is_a_400(client: Client) -> None:
    created = await create(client)
    response = await client.put(
        f"/api/scan-rules/{created['id']}",
        json={"conditions": {"audio_language_not": "eng,??"}},
    )
    assert response.status == 400
    assert (await response.json())["field"] == "conditions.audio_language_not"


async def test_deleted_rule_is_gone(client: Client) -> None:
    created = await create(client)
    response = await client.delete(f"/api/scan-rules/{created['id']}")
    assert response.status == 200
    assert await response.json() == {"message": "Scan rule 1 deleted successfully"}
    assert (await client.get("/api/scan-rules/1")).status == 404


async def test_toggle_flips_enabled_both_ways(client: Client) -> None:
    created = await create(client)
    off = await (await client.post(f"/api/scan-rules/{created['id']}/toggle")).json()
    assert off["enabled"] is False
    on = await (await client.post(f"/api/scan-rules/{created['id']}/toggle")).json()
    assert on["enabled"] is True
    assert on["name"] == created["name"]


async def test_scan_rules_answer_503_while_the_scanner_is_not_running(
    api: Client,
) -> None:
    response = await api.get("/api/scan-rules")
    assert response.status == 503
    assert (await response.json())["detail"] == "The scanner is not running"
