"""Queries on the ``settings`` table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from transcriptarr.catalog import SettingDefault
from transcriptarr.errors import StoreError
from transcriptarr.models import Setting, iso_utc, utc_now
from transcriptarr.store.db import fetch_all, write_each, write_transaction

_FIELDS = tuple(Setting.model_fields)
_SELECT = "SELECT " + ", ".join(_FIELDS) + " FROM settings"


def _row_to_setting(row: Sequence[Any]) -> Setting:
    return Setting.model_validate(dict(zip(_FIELDS, row, strict=True)))


class SettingsStore:
    """The settings table over one connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def all(self, category: str | None = None) -> list[Setting]:
        if category is None:
            rows = await self._read(_SELECT + " ORDER BY category, key")
        else:
            rows = await self._read(
                _SELECT + " WHERE category = ? ORDER BY key", (category,)
            )
        return [_row_to_setting(row) for row in rows]

    async def get(self, key: str) -> Setting | None:
        rows = await self._read(_SELECT + " WHERE key = ?", (key,))
        return _row_to_setting(rows[0]) if rows else None

    async def insert_defaults(self, defaults: Iterable[SettingDefault]) -> int:
        """Insert the defaults that are missing; never touch an existing key."""
        now = iso_utc(utc_now())
        rows = [
            (d.key, d.value, d.description, d.category, d.value_type.value, now)
            for d in defaults
        ]
        sql = (
            "INSERT INTO settings (key, value, description, category,"
            " value_type, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING"
        )
        try:
            async with write_transaction(self._conn):
                before = self._conn.total_changes
                await self._conn.executemany(sql, rows)
                return self._conn.total_changes - before
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot store settings: {exc}") from exc

    async def insert(
        self, key: str, value: str, description: str | None, category: str, kind: str
    ) -> Setting | None:
        """Insert one setting; None when the key exists."""
        sql = (
            "INSERT INTO settings (key, value, description, category,"
            " value_type, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING RETURNING " + ", ".join(_FIELDS)
        )
        params = (key, value, description, category, kind, iso_utc(utc_now()))
        rows = await self._write(sql, [params])
        return _row_to_setting(rows[0]) if rows else None

    async def update_many(self, values: dict[str, str]) -> list[Setting]:
        """Set several values in one transaction."""
        sql = (
            "UPDATE settings SET value = ?, updated_at = ? WHERE key = ?"
            " RETURNING " + ", ".join(_FIELDS)
        )
        now = iso_utc(utc_now())
        rows = await self._write(sql, [(v, now, k) for k, v in values.items()])
        return [_row_to_setting(row) for row in rows]

    async def delete(self, key: str) -> bool:
        rows = await self._write(
            "DELETE FROM settings WHERE key = ? RETURNING id", [(key,)]
        )
        return bool(rows)

    async def _write(
        self, sql: str, param_rows: list[Sequence[Any]]
    ) -> list[Sequence[Any]]:
        return await write_each(self._conn, sql, param_rows, what="settings")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await fetch_all(self._conn, sql, params, what="settings")
