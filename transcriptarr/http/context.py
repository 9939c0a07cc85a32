"""What a request handler reaches: the actors and the server's configuration."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.http.batching import SubmitBatcher
from transcriptarr.http.caching import PageCache


@dataclass
class Services:
    """Proxies of the named actors, shared by every handler of one process.

    ``scanner`` and ``pool`` are None until those parts run; handlers answer
    with zeros (status) or 503 (their own routes) meanwhile.
    """

    queue: ActorProxy
    settings: ActorProxy
    scanner: ActorProxy | None = None
    pool: ActorProxy | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    started_at_s: float = field(default_factory=time.time)


SERVICES_KEY: web.AppKey[Services] = web.AppKey("services", Services)
SUBMITTER_KEY: web.AppKey[SubmitBatcher] = web.AppKey("submitter", SubmitBatcher)
PAGE_CACHE_KEY: web.AppKey[PageCache] = web.AppKey("page_cache", PageCache)


def services(request: web.Request) -> Services:
    return request.app[SERVICES_KEY]


def submitter(request: web.Request) -> SubmitBatcher:
    return request.app[SUBMITTER_KEY]


def page_cache(request: web.Request) -> PageCache:
    return request.app[PAGE_CACHE_KEY]
