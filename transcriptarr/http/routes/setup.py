"""Setup Wizard API: ``/api/setup``."""

from __future__ import annotations

import asyncio

from aiohttp import web

from transcriptarr import setup_wizard as wizard
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.errors import Unavailable
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.context import services
from transcriptarr.http.security import invalidate_settings_cache
from transcriptarr.models import Message

routes = ApiRoutes(tag="Setup Wizard")


def _running(proxy: ActorProxy | None, what: str) -> ActorProxy:
    if proxy is None:
        raise Unavailable(
            f"The {what} is not running, so standalone mode cannot be applied; "
            "start the server with it and run the wizard again"
        )
    return proxy


@routes.get(
    "/api/setup/status",
    summary="Check setup status",
    response=wizard.SetupStatus,
)
async def setup_status(request: web.Request) -> wizard.SetupStatus:
    found = services(request)
    return await wizard.setup_status(found.settings, found.scanner)


@routes.post(
    "/api/setup/standalone",
    summary="Configure standalone mode and apply it at once",
    body=wizard.StandaloneSetup,
    response=wizard.SetupResult,
    errors={
        400: "A library path, rule, worker or scanner value is not valid, "
        "or Ray cannot place the workers asked for",
        503: "The worker pool or the scanner is not running",
    },
)
async def setup_standalone(
    request: web.Request, *, body: wizard.StandaloneSetup
) -> wizard.SetupResult:
    found = services(request)
    pool = _running(found.pool, "worker pool")
    scanner = _running(found.scanner, "scanner")
    plan = await asyncio.to_thread(wizard.plan_standalone, body)
    try:
        await wizard.apply_standalone(
            plan, settings=found.settings, pool=pool, scanner=scanner
        )
    finally:
        invalidate_settings_cache(request.app)
    return wizard.SetupResult(
        success=True, message="Standalone mode configured successfully"
    )


@routes.post(
    "/api/setup/bazarr-slave",
    summary="Configure Bazarr slave mode (generates an API key)",
    response=wizard.SetupResult,
)
async def setup_bazarr_slave(request: web.Request) -> wizard.SetupResult:
    found = services(request)
    api_key = await wizard.configure_bazarr_slave(found.settings)
    invalidate_settings_cache(request.app)
    host = wizard.reachable_host(found.host, request.url.host)
    return wizard.SetupResult(
        success=True,
        message="Bazarr slave mode configured successfully",
        bazarr_info=wizard.bazarr_info(host, found.port, api_key),
    )


@routes.post(
    "/api/setup/skip",
    summary="Skip the setup wizard (for advanced users)",
    response=Message,
)
async def skip_setup(request: web.Request) -> Message:
    await wizard.skip_setup(services(request).settings)
    invalidate_settings_cache(request.app)
    return Message(message="Setup wizard skipped")
