"""Security middlewares (CORS, API key, body limit) and a redacting access log.

``security_middlewares()`` returns them in the order they must run, outermost
first; the app factory installs them after (inside) the error middleware:

1. CORS, first so a browser's preflight (which never carries a key) is answered
   and so refusals made further in still carry the CORS headers.
2. API key, the *arr convention: header ``X-Api-Key`` or query ``apikey``.
3. Body limit.

Body sizes are limited in three layers:

- A ``Content-Length`` over 1 MiB is refused (413) before anything reads.
- A body without one (chunked) is handed on in a clone of the request whose
  ``client_max_size`` is 1 MiB, so aiohttp's ``read()``, ``json()`` and
  ``post()`` stop there; aiohttp's own 413 becomes a ``PayloadTooLarge`` here.
- The upload routes (Bazarr's raw audio: ``/asr`` and ``/detect-language``, at
  the root and under ``/bazarr/{key}/``) are left to the app's
  ``client_max_size``, which the app factory sets to the largest upload it
  accepts, or to their handlers, which stream. A handler elsewhere that reads
  ``request.content`` itself bypasses the second layer.

Settings are read through a cache of about two seconds per application, so a
request costs no actor call; whoever changes settings calls
:func:`invalidate_settings_cache`. That reaches this process only: other front
end processes see a change within the two seconds. A settings actor that cannot
be reached fails requests (closed), never opens them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import weakref
from dataclasses import dataclass, field
from time import monotonic
from typing import Any
from urllib.parse import unquote, unquote_plus

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware

from transcriptarr.errors import PayloadTooLarge, TranscriptarrError, Unauthorized
from transcriptarr.http.api import json_response
from transcriptarr.http.context import services
from transcriptarr.paths import AllowedRoots

logger = logging.getLogger(__name__)

SETTINGS_CACHE_TTL_S = 2.0
BODY_LIMIT_BYTES = 1024 * 1024
API_KEY_HEADER = "X-Api-Key"
API_KEY_QUERY = "apikey"
CORS_ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type, X-Api-Key, Authorization"
CORS_MAX_AGE_S = 600
REDACTED = "***"

_OPEN_ROUTES = frozenset({"/health", "/status", "/docs", "/redoc", "/openapi.json"})
_DOCS_STATIC = "/docs/static"
_BAZARR_PREFIX = "/bazarr/{"
_UPLOAD_ROUTES = frozenset({"/asr", "/detect-language"})
_SECRET_QUERY_NAMES = frozenset({"apikey", "api_key"})


def security_middlewares() -> list[Middleware]:
    """The security middlewares, outermost first (see the module docstring)."""
    return [cors_middleware, api_key_middleware, body_limit_middleware]


# Settings cache


@dataclass
class _SettingsCache:
    values: dict[str, Any] | None = None
    fetched_at_s: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fresh(self) -> dict[str, Any] | None:
        age_s = monotonic() - self.fetched_at_s
        return self.values if age_s < SETTINGS_CACHE_TTL_S else None


_caches: weakref.WeakKeyDictionary[web.Application, _SettingsCache] = (
    weakref.WeakKeyDictionary()
)


def invalidate_settings_cache(app: web.Application) -> None:
    """Forget the cached settings of ``app``; the next request reads them again.

    Args:
        app: The root application (``request.app`` in its handlers).
    """
    cache = _caches.get(app)
    if cache is not None:
        cache.values = None


async def cached_settings_values(request: web.Request) -> dict[str, Any]:
    """The parsed settings values, at most ~2 s old, read once per period."""
    cache = _caches.get(request.app)
    if cache is None:
        cache = _caches.setdefault(request.app, _SettingsCache())
    values = cache.fresh()
    if values is not None:
        return values
    async with cache.lock:
        values = cache.fresh()
        if values is None:
            values = await services(request).settings.values()
            cache.values, cache.fetched_at_s = values, monotonic()
    return values


# Which route a request reached


def _route_canonical(request: web.Request) -> str | None:
    """The matched route's pattern (``/bazarr/{key}/asr``); None when unmatched.

    Decisions use the route the router chose, not the raw path, so that no
    spelling of a path reaches a guarded handler through an open rule.
    """
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def _is_open(canonical: str | None) -> bool:
    if canonical is None:
        return False
    return canonical in _OPEN_ROUTES or (
        canonical == _DOCS_STATIC or canonical.startswith(_DOCS_STATIC + "/")
    )


def _is_bazarr_prefixed(canonical: str | None) -> bool:
    return canonical is not None and canonical.startswith(_BAZARR_PREFIX)


def _is_upload(request: web.Request) -> bool:
    canonical = _route_canonical(request)
    if request.method != hdrs.METH_POST or canonical is None:
        return False
    if _is_bazarr_prefixed(canonical):
        canonical = "/" + canonical.split("/", 3)[-1]
    return canonical in _UPLOAD_ROUTES


# API key


@web.middleware
async def api_key_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Require the API key when the ``api_key`` setting is not empty."""
    canonical = _route_canonical(request)
    if _is_open(canonical):
        return await handler(request)
    values = await cached_settings_values(request)
    expected = str(values.get("api_key") or "")
    if not expected:
        return await handler(request)
    if _is_bazarr_prefixed(canonical):
        _check_key(request, _bazarr_path_key(request), expected)
        return await handler(request)
    _check_key(request, _presented_key(request), expected)
    return await handler(_without_query_key(request))


def _presented_key(request: web.Request) -> str | None:
    header = request.headers.get(API_KEY_HEADER)
    if header is not None:
        return header
    return request.query.get(API_KEY_QUERY)


def _bazarr_path_key(request: web.Request) -> str:
    segments = request.path.split("/", 3)
    return segments[2] if len(segments) > 2 else ""


def _check_key(request: web.Request, presented: str | None, expected: str) -> None:
    if presented is None:
        logger.debug("Refused %s: no API key", redact_target(request.raw_path))
        raise Unauthorized(
            f"API key required: send it in the {API_KEY_HEADER} header "
            f"or the {API_KEY_QUERY} query parameter"
        )
    if not hmac.compare_digest(_utf8(presented), _utf8(expected)):
        logger.warning(
            "Refused %s from %s: wrong API key",
            redact_target(request.raw_path),
            request.remote,
        )
        raise Unauthorized("Invalid API key")


def _utf8(text: str) -> bytes:
    # Header values may hold any code point; none may turn into an error here.
    return text.encode("utf-8", "surrogatepass")


def _without_query_key(request: web.Request) -> web.Request:
    """The request without ``apikey`` in its query, so handlers never see it."""
    if API_KEY_QUERY not in request.query:
        return request
    rel_url = request.rel_url.without_query_params(API_KEY_QUERY)
    return request.clone(rel_url=rel_url)


# Body limit


@web.middleware
async def body_limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Refuse bodies over 1 MiB, except on the audio upload routes."""
    if _is_upload(request) or not request.body_exists:
        return await handler(request)
    length_bytes = request.content_length
    if length_bytes is not None and length_bytes > BODY_LIMIT_BYTES:
        raise PayloadTooLarge("Request body is larger than 1 MiB")
    if length_bytes is None:
        request = request.clone(client_max_size=BODY_LIMIT_BYTES)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("Request body is larger than 1 MiB") from exc


# CORS


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights and add CORS headers for the ``cors_origins`` listed."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return await handler(request)
    listed = _as_list((await cached_settings_values(request)).get("cors_origins"))
    if not listed:
        return await handler(request)
    if not _origin_allowed(origin, listed):
        response = await handler(request)
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)
        return response
    if _is_preflight(request):
        return _preflight_response(origin)
    return await _with_cors_headers(request, handler, origin)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        return []
    return [str(entry).strip() for entry in value if str(entry).strip()]


def _origin_allowed(origin: str, listed: list[str]) -> bool:
    wanted = origin.strip().rstrip("/").lower()
    allowed = {entry.rstrip("/").lower() for entry in listed}
    return "*" in allowed or wanted in allowed


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    )


def _preflight_response(origin: str) -> web.Response:
    response = web.Response(status=204)
    _add_cors_headers(response, origin)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = CORS_ALLOW_METHODS
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = CORS_ALLOW_HEADERS
    response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(CORS_MAX_AGE_S)
    return response


async def _with_cors_headers(
    request: web.Request, handler: Handler, origin: str
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except TranscriptarrError as exc:
        # The error middleware sits outside this one and builds a new response,
        # so refusals are rendered here, the same way, to keep the headers.
        response = json_response(exc.to_body(), status=exc.status_code)
    except web.HTTPException as exc:
        if exc.status < 400:
            _add_cors_headers(exc, origin)
            raise
        response = json_response({"detail": exc.reason}, status=exc.status)
    _add_cors_headers(response, origin)
    return response


def _add_cors_headers(response: web.StreamResponse, origin: str) -> None:
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers.add(hdrs.VARY, hdrs.ORIGIN)


# Access log


class RedactingAccessLogger(AbstractAccessLogger):
    """An access log line with no secret: method, target, status, time.

    ``apikey`` query values and the key segment of ``/bazarr/<key>/`` become
    ``***``; request headers (``X-Api-Key`` among them) are never logged.
    """

    def log(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> None:
        self.logger.info(
            "%s %s %d %.1fms",
            request.method,
            redact_target(request.raw_path),
            response.status,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


_QUERY_SEPARATOR = re.compile(r"([&;])")


def redact_target(target: str) -> str:
    """A request target (path and query) with the API key values masked.

    Args:
        target: The target as received, percent-encoded.
    """
    path, separator, query = target.partition("?")
    path = _redact_bazarr_segment(path)
    if separator:
        parts = _QUERY_SEPARATOR.split(query)
        query = "".join(_redact_pair(part) for part in parts)
    return path + separator + query


def _redact_bazarr_segment(path: str) -> str:
    segments = path.split("/")
    for index, segment in enumerate(segments[:-1]):
        if unquote(segment).lower() == "bazarr":
            segments[index + 1] = REDACTED
    return "/".join(segments)


def _redact_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    if equals and unquote_plus(name).strip().lower() in _SECRET_QUERY_NAMES:
        return f"{name}={REDACTED}"
    return pair


async def allowed_roots(request: web.Request) -> AllowedRoots:
    """The folders request paths may reach (the ``filesystem_roots`` setting)."""
    values = await cached_settings_values(request)
    configured = values.get("filesystem_roots") or []
    if isinstance(configured, str):
        configured = configured.split(",")
    entries = [entry.strip() for entry in configured if isinstance(entry, str)]
    # Resolving the roots touches the disk: off the event loop.
    return await asyncio.to_thread(AllowedRoots.from_setting, entries)
