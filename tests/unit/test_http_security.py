"""API key, body limit, CORS and the access log over HTTP.

The app is the real one (``create_app``) with in-process actors. The Bazarr
routes and two echo routes are stand-ins added by these tests, so that the
middlewares can be seen at work on every kind of route.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.settings import SettingsService
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services
from transcriptarr.http.security import BODY_LIMIT_BYTES, RedactingAccessLogger

Client = TestClient[Any, Any]
KEY = "k3y-0f-the-h0use-5ecret"
UI_ORIGIN = "http://ui.example:8080"
TOO_LARGE = {"detail": "Request body is larger than 1 MiB"}


async def body_size(request: web.Request) -> web.Response:
    return web.json_response({"size_bytes": len(await request.read())})


async def query_names(request: web.Request) -> web.Response:
    return web.json_response(sorted(request.query))


async def provider_status(request: web.Request) -> web.Response:
    return web.json_response({"version": "Transcriptarr test"})


def app_with_stand_ins(services: Services) -> web.Application:
    app = create_app(services)
    for path in ("/asr", "/detect-language"):
        app.router.add_post(path, body_size)
        app.router.add_post("/bazarr/{key}" + path, body_size)
    app.router.add_get("/status", provider_status)
    app.router.add_post("/api/test/body-size", body_size)
    app.router.add_get("/api/test/query-names", query_names)
    return app


@pytest.fixture
async def api(
    board: JobBoard, settings_service: SettingsService
) -> AsyncIterator[Client]:
    services = Services(queue=ActorProxy(board), settings=ActorProxy(settings_service))
    server = TestServer(app_with_stand_ins(services))
    await server.start_server(access_log_class=RedactingAccessLogger)
    client: Client = TestClient(server)
    await client.start_server()
    yield client
    await client.close()


async def set_setting(
    api: Client, key: str, value: str, *, api_key: str | None = None
) -> None:
    headers = {} if api_key is None else {"X-Api-Key": api_key}
    response = await api.put(
        f"/api/settings/{key}", json={"value": value}, headers=headers
    )
    assert response.status == 200, await response.text()


async def chunks(
    total_bytes: int, chunk_bytes: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """A body sent chunked: no Content-Length for the server to check."""
    sent_bytes = 0
    while sent_bytes < total_bytes:
        size = min(chunk_bytes, total_bytes - sent_bytes)
        sent_bytes += size
        yield b"x" * size


# API key


async def test_without_an_api_key_setting_every_route_is_open(api: Client) -> None:
    response = await api.get("/api/filesystem/common-paths")

    assert response.status == 200


async def test_with_an_api_key_a_request_without_it_is_401(api: Client) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.get("/api/filesystem/common-paths")

    assert response.status == 401
    assert await response.json() == {
        "detail": "API key required: send it in the X-Api-Key header "
        "or the apikey query parameter"
    }


async def test_the_api_key_is_accepted_in_the_header_or_the_query(
    api: Client,
) -> None:
    await set_setting(api, "api_key", KEY)

    by_header = await api.get("/api/system/memory", headers={"X-Api-Key": KEY})
    by_query = await api.get("/api/system/memory", params={"apikey": KEY})

    assert (by_header.status, by_query.status) == (200, 200)


@pytest.mark.parametrize(
    "where",
    [{"headers": {"X-Api-Key": "wrong"}}, {"params": {"apikey": KEY + "x"}}],
)
async def test_a_wrong_api_key_is_401(api: Client, where: dict[str, Any]) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.get("/api/system/memory", **where)

    assert response.status == 401
    assert await response.json() == {"detail": "Invalid API key"}


async def test_a_non_ascii_api_key_attempt_is_401_not_an_error(api: Client) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.get("/api/system/memory", params={"apikey": "clé-€"})

    assert response.status == 401


async def test_handlers_never_see_the_api_key_in_the_query(api: Client) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.get(
        "/api/test/query-names", params={"apikey": KEY, "page": "2"}
    )

    assert await response.json() == ["page"]


@pytest.mark.parametrize(
    "path",
    ["/health", "/status", "/docs", "/redoc", "/openapi.json"],
)
async def test_health_status_and_documentation_stay_open_with_a_key_set(
    api: Client, path: str
) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.get(path)

    assert response.status == 200


async def test_documentation_assets_stay_open_with_a_key_set(api: Client) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.get("/docs/static/swagger-ui-dist/swagger-ui.css")

    assert response.status == 200


async def test_a_path_that_only_looks_like_an_open_route_needs_the_key(
    api: Client,
) -> None:
    await set_setting(api, "api_key", KEY)

    lookalikes = [
        "/health/",
        "/statusx",
        "/docs/static/../../api/status",
        "/docs/static/%2e%2e/%2e%2e/api/status",
        "/docs/static/..%2f..%2fapi/status",
        "//api/status",
    ]

    for path in lookalikes:
        url = URL(str(api.make_url("/")).rstrip("/") + path, encoded=True)
        async with api.session.get(url) as response:
            assert response.status in {401, 403, 404}, path
            assert "uptime" not in await response.text()


async def test_an_unknown_route_needs_the_key_before_it_is_reported_missing(
    api: Client,
) -> None:
    await set_setting(api, "api_key", KEY)

    without = await api.get("/api/nothing-here")
    with_key = await api.get("/api/nothing-here", headers={"X-Api-Key": KEY})

    assert (without.status, with_key.status) == (401, 404)


async def test_bazarr_reaches_its_routes_with_the_key_in_the_path(
    api: Client,
) -> None:
    await set_setting(api, "api_key", KEY)

    asr = await api.post(f"/bazarr/{KEY}/asr", data=b"\x00\x01" * 100)
    detect = await api.post(f"/bazarr/{KEY}/detect-language", data=b"\x00\x01")

    assert (asr.status, detect.status) == (200, 200)


async def test_a_wrong_key_in_the_bazarr_path_is_401_even_with_a_right_header(
    api: Client,
) -> None:
    await set_setting(api, "api_key", KEY)

    response = await api.post(
        "/bazarr/not-the-key/asr", data=b"\x00\x01", headers={"X-Api-Key": KEY}
    )

    assert response.status == 401
    assert await response.json() == {"detail": "Invalid API key"}


async def test_the_root_provider_routes_need_the_key_like_every_route(
    api: Client,
) -> None:
    await set_setting(api, "api_key", KEY)

    without = await api.post("/asr", data=b"\x00\x01")
    with_key = await api.post("/asr", data=b"\x00\x01", params={"apikey": KEY})

    assert (without.status, with_key.status) == (401, 200)


async def test_a_new_api_key_takes_effect_on_the_next_request(api: Client) -> None:
    await set_setting(api, "api_key", KEY)
    await set_setting(api, "api_key", "replacement", api_key=KEY)

    old = await api.get("/api/system/memory", headers={"X-Api-Key": KEY})
    new = await api.get("/api/system/memory", headers={"X-Api-Key": "replacement"})

    assert (old.status, new.status) == (401, 200)


# Body limit


async def test_a_json_body_declared_over_1_mib_is_413(api: Client) -> None:
    body = b'{"value": "' + b"x" * BODY_LIMIT_BYTES + b'"}'

    response = await api.put(
        "/api/settings/cors_origins",
        data=io.BytesIO(body),
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 413
    assert await response.json() == TOO_LARGE


async def test_a_chunked_json_body_over_1_mib_is_413(api: Client) -> None:
    response = await api.put(
        "/api/settings/cors_origins", data=chunks(BODY_LIMIT_BYTES + 1)
    )

    assert response.status == 413
    assert await response.json() == TOO_LARGE


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_of_exactly_1_mib_is_accepted(api: Client, chunked: bool) -> None:
    whole = io.BytesIO(b"x" * BODY_LIMIT_BYTES)
    data: Any = chunks(BODY_LIMIT_BYTES) if chunked else whole

    response = await api.post("/api/test/body-size", data=data)

    assert response.status == 200
    assert await response.json() == {"size_bytes": BODY_LIMIT_BYTES}


async def test_a_small_chunked_body_reaches_the_handler_whole(api: Client) -> None:
    response = await api.post("/api/test/body-size", data=chunks(300_000, 7_000))

    assert await response.json() == {"size_bytes": 300_000}


@pytest.mark.parametrize(
    "path",
    [
        "/asr",
        "/detect-language",
        f"/bazarr/{KEY}/asr",
        f"/bazarr/{KEY}/detect-language",
    ],
)
async def test_bazarr_audio_uploads_may_be_larger_than_1_mib(
    api: Client, path: str
) -> None:
    size_bytes = 3 * BODY_LIMIT_BYTES + 1

    declared = await api.post(path, data=io.BytesIO(b"\x00" * size_bytes))
    streamed = await api.post(path, data=chunks(size_bytes))

    assert await declared.json() == {"size_bytes": size_bytes}
    assert await streamed.json() == {"size_bytes": size_bytes}


# CORS


async def test_cors_is_off_until_origins_are_listed(api: Client) -> None:
    response = await api.get("/api/system/memory", headers={"Origin": UI_ORIGIN})
    preflight = await api.options(
        "/api/system/memory",
        headers={"Origin": UI_ORIGIN, "Access-Control-Request-Method": "GET"},
    )

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert preflight.status != 204


async def test_a_listed_origin_gets_its_preflight_answered(api: Client) -> None:
    await set_setting(api, "cors_origins", f"http://other.example, {UI_ORIGIN}")

    response = await api.options(
        "/api/jobs",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )

    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "X-Api-Key" in response.headers["Access-Control-Allow-Headers"]


async def test_a_listed_origin_may_read_responses(api: Client) -> None:
    await set_setting(api, "cors_origins", "HTTP://UI.example:8080/")

    response = await api.get("/api/system/memory", headers={"Origin": UI_ORIGIN})

    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "Origin" in response.headers.getall("Vary")


async def test_an_unlisted_origin_gets_no_cors_headers(api: Client) -> None:
    await set_setting(api, "cors_origins", UI_ORIGIN)

    response = await api.get(
        "/api/system/memory", headers={"Origin": "http://evil.example"}
    )
    preflight = await api.options(
        "/api/system/memory",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "GET",
        },
    )

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_with_a_key_set_a_listed_origin_can_preflight_and_read_the_401(
    api: Client,
) -> None:
    await set_setting(api, "cors_origins", UI_ORIGIN)
    await set_setting(api, "api_key", KEY, api_key=None)

    preflight = await api.options(
        "/api/system/memory",
        headers={"Origin": UI_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    refused = await api.get("/api/system/memory", headers={"Origin": UI_ORIGIN})
    missing = await api.get(
        "/api/nothing-here", headers={"Origin": UI_ORIGIN, "X-Api-Key": KEY}
    )

    assert preflight.status == 204
    assert refused.status == 401
    assert refused.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert missing.status == 404
    assert missing.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


# Access log


async def access_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    """The access log lines, once ``count`` of them have been written."""
    for _ in range(10_000):
        lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0)
    raise AssertionError(f"only {len(lines)} access log lines were written")


async def test_the_api_key_appears_in_no_log_line(
    api: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # aiosqlite logs SQL parameters at DEBUG, the key among them; that is the
    # store's logging to tame, so only this package is captured at DEBUG.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="transcriptarr")
    await set_setting(api, "api_key", KEY)

    await api.get("/api/system/memory", params={"apikey": KEY})
    await api.get("/api/system/memory", headers={"X-Api-Key": KEY})
    await api.post(f"/bazarr/{KEY}/asr", data=b"\x00\x01")
    await api.get("/api/system/memory", params={"apikey": KEY + "-wrong"})
    await api.get(f"/api/system/memory?apikey={KEY}&apikey={KEY}")
    lines = await access_lines(caplog, 6)

    assert KEY not in caplog.text
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "PUT /api/settings/api_key 200",
        "GET /api/system/memory?apikey=*** 200",
        "GET /api/system/memory 200",
        "POST /bazarr/***/asr 200",
        "GET /api/system/memory?apikey=*** 401",
        "GET /api/system/memory?apikey=***&apikey=*** 200",
    ]
