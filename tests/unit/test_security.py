"""Access-log redaction and the settings cache, without a server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.http import security
from transcriptarr.http.context import SERVICES_KEY, Services
from transcriptarr.http.security import (
    RedactingAccessLogger,
    cached_settings_values,
    invalidate_settings_cache,
    redact_target,
)

SECRET = "s3cr3t-k3y-0123456789"


class CountingSettings:
    """Stands in for the settings actor and counts the reads."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.current = values
        self.reads = 0

    async def values(self) -> dict[str, Any]:
        self.reads += 1
        await asyncio.sleep(0)
        return dict(self.current)


def app_with(settings: CountingSettings) -> web.Application:
    app = web.Application()
    app[SERVICES_KEY] = Services(
        queue=ActorProxy(object()), settings=ActorProxy(settings)
    )
    return app


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"/api/jobs?apikey={SECRET}", "/api/jobs?apikey=***"),
        (
            f"/api/jobs?page=2&apikey={SECRET}&status=queued",
            "/api/jobs?page=2&apikey=***&status=queued",
        ),
        (f"/api/jobs?APIKEY={SECRET}", "/api/jobs?APIKEY=***"),
        (f"/api/jobs?api_key={SECRET}", "/api/jobs?api_key=***"),
        (f"/api/jobs?api%6Bey={SECRET}", "/api/jobs?api%6Bey=***"),
        (f"/api/jobs?apikey={SECRET};page=1", "/api/jobs?apikey=***;page=1"),
        (f"/bazarr/{SECRET}/asr?task=transcribe", "/bazarr/***/asr?task=transcribe"),
        (f"/bazarr/{SECRET}", "/bazarr/***"),
        (f"/b%61zarr/{SECRET}/asr", "/b%61zarr/***/asr"),
        ("/api/jobs?search=apikey", "/api/jobs?search=apikey"),
        ("/api/system/cpu", "/api/system/cpu"),
    ],
)
def test_access_log_targets_hide_the_api_key(target: str, expected: str) -> None:
    assert redact_target(target) == expected


def test_the_access_log_line_has_method_target_status_and_milliseconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access_logger = RedactingAccessLogger(logging.getLogger("test.access"), "")
    request = make_mocked_request(
        "GET", f"/api/jobs?apikey={SECRET}", headers={"X-Api-Key": SECRET}
    )

    with caplog.at_level(logging.INFO, logger="test.access"):
        access_logger.log(request, web.Response(status=200), 0.0125)

    assert caplog.messages == ["GET /api/jobs?apikey=*** 200 12.5ms"]
    assert SECRET not in caplog.text


def test_the_access_log_is_off_when_its_logger_skips_info() -> None:
    quiet = logging.getLogger("test.quiet-access")
    quiet.setLevel(logging.WARNING)

    assert RedactingAccessLogger(quiet, "").enabled is False


async def test_settings_are_read_once_while_the_cache_is_fresh() -> None:
    settings = CountingSettings({"api_key": ""})
    request = make_mocked_request("GET", "/", app=app_with(settings))

    for _ in range(5):
        await cached_settings_values(request)

    assert settings.reads == 1


async def test_concurrent_requests_share_one_settings_read() -> None:
    settings = CountingSettings({"api_key": ""})
    request = make_mocked_request("GET", "/", app=app_with(settings))

    await asyncio.gather(*(cached_settings_values(request) for _ in range(10)))

    assert settings.reads == 1


async def test_invalidating_the_cache_makes_the_next_request_see_new_settings() -> None:
    settings = CountingSettings({"api_key": "old"})
    app = app_with(settings)
    request = make_mocked_request("GET", "/", app=app)
    await cached_settings_values(request)
    settings.current = {"api_key": "new"}

    invalidate_settings_cache(app)

    assert (await cached_settings_values(request))["api_key"] == "new"


async def test_settings_are_read_again_once_the_cache_has_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = CountingSettings({"api_key": ""})
    request = make_mocked_request("GET", "/", app=app_with(settings))
    monkeypatch.setattr(security, "SETTINGS_CACHE_TTL_S", 0.0)

    await cached_settings_values(request)
    await cached_settings_values(request)

    assert settings.reads == 2


def test_invalidating_an_app_that_never_served_a_request_is_harmless() -> None:
    invalidate_settings_cache(web.Application())
