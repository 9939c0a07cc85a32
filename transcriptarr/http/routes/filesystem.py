"""Filesystem API: browse directories inside the ``filesystem_roots`` setting."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr import paths
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.context import services
from transcriptarr.paths import AllowedRoots, DirectoryListing, FilesystemItem

routes = ApiRoutes(tag="Filesystem")


class BrowseQuery(BaseModel):
    path: str | None = Field(
        default=None,
        description=(
            'Directory to list; "/" by default, or the first allowed root '
            'when "/" is not allowed'
        ),
    )


async def _allowed_roots(request: web.Request) -> AllowedRoots:
    values: dict[str, Any] = await services(request).settings.values()
    configured = values.get("filesystem_roots") or []
    if isinstance(configured, str):
        configured = configured.split(",")
    entries = [entry.strip() for entry in configured if isinstance(entry, str)]
    return await asyncio.to_thread(AllowedRoots.from_setting, entries)


@routes.get(
    "/api/filesystem/browse",
    summary="List the directories inside one directory",
    response=DirectoryListing,
    query=BrowseQuery,
    errors={
        400: "Path is not a directory",
        403: "Permission denied, or outside the allowed directories",
        404: "Path does not exist",
    },
)
async def browse(request: web.Request, *, query: BrowseQuery) -> DirectoryListing:
    roots = await _allowed_roots(request)
    raw_path = query.path or roots.default_start()
    return await asyncio.to_thread(paths.browse, raw_path, roots)


@routes.get(
    "/api/filesystem/common-paths",
    summary="Starting points: the allowed roots and media folders inside them",
    response=list[FilesystemItem],
)
async def common_paths(request: web.Request) -> list[FilesystemItem]:
    roots = await _allowed_roots(request)
    return await asyncio.to_thread(paths.common_paths, roots)
