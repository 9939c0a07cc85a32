"""Filesystem API: browse directories inside the ``filesystem_roots`` setting."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr import paths
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.security import allowed_roots
from transcriptarr.paths import DirectoryListing, FilesystemItem

routes = ApiRoutes(tag="Filesystem")


class BrowseQuery(BaseModel):
    path: str | None = Field(
        default=None,
        description=(
            'Directory to list; "/" by default, or the first allowed root '
            'when "/" is not allowed'
        ),
    )


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
    roots = await allowed_roots(request)
    raw_path = query.path or roots.default_start()
    return await asyncio.to_thread(paths.browse, raw_path, roots)


@routes.get(
    "/api/filesystem/common-paths",
    summary="Starting points: the allowed roots and media folders inside them",
    response=list[FilesystemItem],
)
async def common_paths(request: web.Request) -> list[FilesystemItem]:
    roots = await allowed_roots(request)
    return await asyncio.to_thread(paths.common_paths, roots)
