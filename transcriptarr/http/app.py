"""The aiohttp application: middlewares, route groups, documentation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from ray.exceptions import RayActorError, RayTaskError

from transcriptarr.errors import TranscriptarrError
from transcriptarr.http import openapi
from transcriptarr.http.api import OPERATIONS_KEY, ApiRoutes, json_response
from transcriptarr.http.batching import SubmitBatcher
from transcriptarr.http.caching import PageCache
from transcriptarr.http.context import (
    PAGE_CACHE_KEY,
    SERVICES_KEY,
    SUBMITTER_KEY,
    Services,
)
from transcriptarr.http.routes import (
    jobs,
    scan_rules,
    scanner,
    settings,
    system,
    workers,
)

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Raw audio uploads of the Bazarr routes are the only large bodies; the JSON
# routes refuse more than 1 MiB in the security middleware.
CLIENT_MAX_SIZE_BYTES = 1024 * 1024 * 1024


def route_groups() -> list[ApiRoutes]:
    """Every API group, in routing order."""
    return [
        system.routes,
        jobs.routes,
        settings.routes,
        workers.routes,
        scan_rules.routes,
        scanner.routes,
        *_optional_groups(),
    ]


def _optional_groups() -> list[ApiRoutes]:
    from transcriptarr.http.routes import filesystem, setup, system_resources

    return [system_resources.routes, filesystem.routes, setup.routes]


def _unwrap(exc: BaseException) -> BaseException:
    """The exception an actor raised, out of Ray's wrapper."""
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException):
        cause: BaseException = exc.cause
        return cause
    return exc


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Map the error tree (and stray errors) to status codes and JSON bodies."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_response({"detail": exc.reason}, status=exc.status)
    except Exception as raised:
        cause = _unwrap(raised)
        if isinstance(cause, TranscriptarrError):
            return json_response(cause.to_body(), status=cause.status_code)
        if isinstance(cause, RayActorError):
            logger.error("actor unavailable during %s %s", request.method, request.path)
            return json_response(
                {"detail": "A service actor is not available; try again shortly"},
                status=503,
            )
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return json_response({"detail": "Internal server error"}, status=500)


def create_app(services: Services) -> web.Application:
    """Build the application around ``services`` (actor proxies)."""
    from transcriptarr.http import security

    app = web.Application(
        middlewares=[error_middleware, *security.security_middlewares()],
        client_max_size=CLIENT_MAX_SIZE_BYTES,
    )
    app[SERVICES_KEY] = services
    app[SUBMITTER_KEY] = SubmitBatcher(services.queue)
    pages = app[PAGE_CACHE_KEY] = PageCache(services.queue)
    app.on_startup.append(pages.start)
    app.on_cleanup.append(pages.stop)
    app[OPERATIONS_KEY] = []
    for group in route_groups():
        group.install(app)
    openapi.install(app)
    return app
