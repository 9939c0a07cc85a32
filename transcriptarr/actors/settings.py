"""The SettingsActor's logic: the settings table and its catalog of defaults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

from transcriptarr.actors.lifecycle import ensure_started
from transcriptarr.catalog import (
    DEFAULTS,
    DEFAULTS_BY_KEY,
    normalise_value,
    parse_value,
)
from transcriptarr.errors import Conflict, InvalidInput, NotFound
from transcriptarr.models import Setting, SettingCreate
from transcriptarr.store import db
from transcriptarr.store.settings import SettingsStore

logger = logging.getLogger(__name__)

# Settings whose values must never be written to a log.
SECRET_KEYS = frozenset({"api_key"})

Listener = Callable[[dict[str, Any]], Any]


class SettingsService:
    """Reads, validates and writes settings."""

    def __init__(self, db_path: str | Path) -> None:
        self._db_path = Path(db_path)
        self._conn: aiosqlite.Connection | None = None
        self._store: SettingsStore | None = None
        self.start_lock = asyncio.Lock()

    @property
    def is_started(self) -> bool:
        return self._store is not None

    async def start(self) -> None:
        if self._store is not None:
            return
        self._conn = await db.connect(self._db_path)
        self._store = SettingsStore(self._conn)
        await self.init_defaults()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = None
        self._store = None

    @property
    def store(self) -> SettingsStore:
        if self._store is None:
            raise RuntimeError("SettingsService.start() was not awaited")
        return self._store

    @ensure_started
    async def list(self, category: str | None = None) -> list[Setting]:
        return await self.store.all(category)

    @ensure_started
    async def get(self, key: str) -> Setting:
        setting = await self.store.get(key)
        if setting is None:
            raise NotFound(f"Setting '{key}' not found")
        return setting

    @ensure_started
    async def update(self, key: str, value: str) -> Setting:
        """Set one value, validated against the setting's type."""
        current = await self.get(key)
        stored = normalise_value(value, current.value_type, key=key)
        updated = await self.store.update_many({key: stored})
        _log_change([key])
        return updated[0]

    @ensure_started
    async def bulk_update(self, values: dict[str, str]) -> int:
        """Set several values at once: all valid and known, or none written."""
        if not values:
            raise InvalidInput("settings must name at least one key", field="settings")
        existing = {s.key: s for s in await self.store.all()}
        missing = sorted(set(values) - set(existing))
        if missing:
            raise NotFound(f"Setting '{missing[0]}' not found")
        stored = {
            key: normalise_value(value, existing[key].value_type, key=key)
            for key, value in values.items()
        }
        await self.store.update_many(stored)
        _log_change(list(stored))
        return len(stored)

    @ensure_started
    async def create(self, body: SettingCreate | dict[str, Any]) -> Setting:
        parsed = SettingCreate.model_validate(body)
        value = normalise_value(parsed.value, parsed.value_type, key=parsed.key)
        setting = await self.store.insert(
            parsed.key,
            value,
            parsed.description,
            parsed.category,
            parsed.value_type.value,
        )
        if setting is None:
            raise Conflict(f"Setting '{parsed.key}' already exists")
        logger.info("setting created key=%s", parsed.key)
        return setting

    @ensure_started
    async def delete(self, key: str) -> None:
        if not await self.store.delete(key):
            raise NotFound(f"Setting '{key}' not found")
        logger.info("setting deleted key=%s", key)

    async def init_defaults(self) -> int:
        """Insert every missing default; values already stored are kept."""
        added = await self.store.insert_defaults(DEFAULTS)
        if added:
            logger.info("initialised %d default settings", added)
        return added

    @ensure_started
    async def values(self) -> dict[str, Any]:
        """Every setting parsed to its Python type, defaults filling gaps."""
        parsed = {d.key: parse_value(d.value, d.value_type) for d in DEFAULTS}
        for setting in await self.store.all():
            try:
                parsed[setting.key] = parse_value(setting.value, setting.value_type)
            except InvalidInput:
                default = DEFAULTS_BY_KEY.get(setting.key)
                logger.warning("setting %s holds an invalid value", setting.key)
                if default is not None:
                    parsed[setting.key] = parse_value(default.value, default.value_type)
        return parsed

    @ensure_started
    async def value(self, key: str) -> Any:
        values = await self.values()
        if key not in values:
            raise NotFound(f"Setting '{key}' not found")
        return values[key]

    @ensure_started
    async def ping(self) -> bool:
        if self._conn is None:
            raise RuntimeError("SettingsService.start() was not awaited")
        await db.ping(self._conn)
        return True


def _log_change(keys: list[str]) -> None:
    shown = ", ".join(sorted(keys))
    secret = SECRET_KEYS.intersection(keys)
    logger.info("settings updated keys=%s%s", shown, " (secret)" if secret else "")
