"""Settings API: ``/api/settings``."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr.actors.queue import QueuePolicy
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.context import services
from transcriptarr.models import (
    Message,
    Setting,
    SettingCreate,
    SettingsBulkUpdate,
    SettingUpdate,
)

routes = ApiRoutes(tag="Settings")


class SettingsQuery(BaseModel):
    category: str | None = Field(
        default=None,
        description="general, workers, transcription, scanner, queue, output, bazarr",
    )


class SettingPath(BaseModel):
    key: str = Field(min_length=1, max_length=128)


async def settings_changed(request: web.Request, keys: Iterable[str]) -> None:
    """Tell the parts that cache settings that some changed."""
    # Imported here: security.py is optional until the wizard issue lands.
    from transcriptarr.http import security

    security.invalidate_settings_cache(request.app)
    if any(key.startswith("queue_") for key in keys):
        values = await services(request).settings.values()
        await services(request).queue.configure(policy_from_settings(values))


def policy_from_settings(values: dict[str, object]) -> QueuePolicy:
    return QueuePolicy(
        max_retries=int(str(values["queue_max_retries"])),
        backoff_base_s=float(str(values["queue_backoff_base_s"])),
        backoff_max_s=float(str(values["queue_backoff_max_s"])),
        lease_s=float(str(values["queue_lease_s"])),
    )


@routes.get(
    "/api/settings",
    summary="List settings",
    query=SettingsQuery,
    response=list[Setting],
)
async def list_settings(request: web.Request, *, query: SettingsQuery) -> list[Setting]:
    found: list[Setting] = await services(request).settings.list(query.category)
    return found


@routes.post(
    "/api/settings/bulk-update",
    summary="Update several settings",
    body=SettingsBulkUpdate,
    response=Message,
    errors={404: "Setting not found"},
)
async def bulk_update(request: web.Request, *, body: SettingsBulkUpdate) -> Message:
    count = await services(request).settings.bulk_update(body.settings)
    await settings_changed(request, body.settings)
    return Message(message=f"Updated {count} settings successfully")


@routes.post(
    "/api/settings/init-defaults",
    summary="Initialise default settings (idempotent)",
    response=Message,
)
async def init_defaults(request: web.Request) -> Message:
    await services(request).settings.init_defaults()
    return Message(message="Default settings initialized successfully")


@routes.post(
    "/api/settings",
    summary="Create a setting",
    body=SettingCreate,
    response=Setting,
    status=201,
    errors={409: "Setting already exists"},
)
async def create_setting(request: web.Request, *, body: SettingCreate) -> Setting:
    setting: Setting = await services(request).settings.create(body)
    return setting


@routes.get(
    "/api/settings/{key}",
    summary="Get a setting",
    path_model=SettingPath,
    response=Setting,
    errors={404: "Setting not found"},
)
async def get_setting(request: web.Request, *, path: SettingPath) -> Setting:
    setting: Setting = await services(request).settings.get(path.key)
    return setting


@routes.put(
    "/api/settings/{key}",
    summary="Update a setting",
    path_model=SettingPath,
    body=SettingUpdate,
    response=Setting,
    errors={404: "Setting not found"},
)
async def update_setting(
    request: web.Request, *, path: SettingPath, body: SettingUpdate
) -> Setting:
    setting: Setting = await services(request).settings.update(path.key, body.value)
    await settings_changed(request, [path.key])
    return setting


@routes.delete(
    "/api/settings/{key}",
    summary="Delete a setting",
    path_model=SettingPath,
    response=Message,
    errors={404: "Setting not found"},
)
async def delete_setting(request: web.Request, *, path: SettingPath) -> Message:
    await services(request).settings.delete(path.key)
    await settings_changed(request, [path.key])
    return Message(message=f"Setting '{path.key}' deleted successfully")
