"""Queries of the library scanner: scan rules, the media index, detections.

The media index remembers, for every media file a scan has seen, its size and
modification time, what probing it found (or why probing failed), and which
target languages a job was already asked for in that version of the file. A
file whose size and mtime are unchanged is neither probed nor submitted again.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from transcriptarr.errors import Conflict, StoreError
from transcriptarr.models import iso_utc, utc_now
from transcriptarr.rules import ScanRule, ScanRuleCreate
from transcriptarr.store.db import (
    fetch_all,
    write_batches,
    write_each,
)

_WHAT = "scanner data"

_RULE_FIELDS = (
    "id",
    "name",
    "enabled",
    "priority",
    "conditions",
    "action",
    "created_at",
    "updated_at",
)
_SELECT_RULE = "SELECT " + ", ".join(_RULE_FIELDS) + " FROM scan_rules"
_RETURNING_RULE = " RETURNING " + ", ".join(_RULE_FIELDS)
_INDEX_FIELDS = "path, size_bytes, mtime_ns, probe, probe_error, submitted"
# Paths under a folder sort between "<folder>/" and "<folder>0" ("0" follows
# "/" in code point order), so one range scan reads a whole subtree.
_AFTER_SLASH = chr(ord("/") + 1)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One media file as the index knows it.

    Attributes:
        path: The resolved file path.
        size_bytes: Size when it was indexed.
        mtime_ns: Modification time when it was indexed.
        probe: ``MediaInfo.to_dict()`` without the external subtitles, as JSON
            text; None when probing failed.
        probe_error: Why probing failed.
        submitted: Target languages a job was asked for in this version.
    """

    path: str
    size_bytes: int
    mtime_ns: int
    probe: str | None
    probe_error: str | None = None
    submitted: frozenset[str] = frozenset()

    def same_version(self, size_bytes: int, mtime_ns: int) -> bool:
        return self.size_bytes == size_bytes and self.mtime_ns == mtime_ns

    def with_submitted(self, target_lang: str) -> IndexEntry:
        """This entry, recording that a job for ``target_lang`` was asked for."""
        return dataclasses.replace(self, submitted=self.submitted | {target_lang})

    def probe_dict(self) -> dict[str, Any] | None:
        if self.probe is None:
            return None
        parsed: dict[str, Any] = orjson.loads(self.probe)
        return parsed


@dataclass(frozen=True, slots=True)
class Detection:
    """A cached language detection of one audio track of one file version."""

    track_index: int
    language: str | None
    probability: float | None


def _row_to_rule(row: Sequence[Any]) -> ScanRule:
    data = dict(zip(_RULE_FIELDS, row, strict=True))
    data["conditions"] = orjson.loads(data["conditions"])
    data["action"] = orjson.loads(data["action"])
    return ScanRule.model_validate(data)


def _row_to_entry(row: Sequence[Any]) -> IndexEntry:
    path, size_bytes, mtime_ns, probe, probe_error, submitted = row
    languages = frozenset(code for code in submitted.split(",") if code)
    return IndexEntry(path, size_bytes, mtime_ns, probe, probe_error, languages)


def _rule_columns(rule: ScanRuleCreate) -> tuple[Any, ...]:
    return (
        rule.name,
        int(rule.enabled),
        rule.priority,
        orjson.dumps(rule.conditions.model_dump(mode="json")).decode(),
        orjson.dumps(rule.action.model_dump(mode="json")).decode(),
    )


def subtree_bounds(folder: str) -> tuple[str, str]:
    """The ``[low, high)`` path range of everything under ``folder``."""
    base = folder.rstrip("/")
    return base + "/", base + _AFTER_SLASH


class ScannerStore:
    """The scanner's tables over one connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    # Scan rules -------------------------------------------------------------

    async def list_rules(self, *, enabled_only: bool = False) -> list[ScanRule]:
        where = " WHERE enabled = 1" if enabled_only else ""
        rows = await self._read(_SELECT_RULE + where + " ORDER BY priority DESC, id")
        return [_row_to_rule(row) for row in rows]

    async def get_rule(self, rule_id: int) -> ScanRule | None:
        rows = await self._read(_SELECT_RULE + " WHERE id = ?", (rule_id,))
        return _row_to_rule(rows[0]) if rows else None

    async def insert_rule(self, rule: ScanRuleCreate) -> ScanRule:
        """Store a new rule.

        Raises:
            Conflict: A rule with the same name (ignoring case) exists.
        """
        sql = (
            "INSERT INTO scan_rules (name, enabled, priority, conditions, action,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)" + _RETURNING_RULE
        )
        params = (*_rule_columns(rule), iso_utc(utc_now()))
        rows = await self._write_rule(sql, params, rule.name)
        return _row_to_rule(rows[0])

    async def update_rule(self, rule_id: int, rule: ScanRuleCreate) -> ScanRule | None:
        """Replace a rule's fields; None when there is no such rule.

        Raises:
            Conflict: Another rule has the new name.
        """
        sql = (
            "UPDATE scan_rules SET name = ?, enabled = ?, priority = ?,"
            " conditions = ?, action = ?, updated_at = ? WHERE id = ?" + _RETURNING_RULE
        )
        params = (*_rule_columns(rule), iso_utc(utc_now()), rule_id)
        rows = await self._write_rule(sql, params, rule.name)
        return _row_to_rule(rows[0]) if rows else None

    async def delete_rule(self, rule_id: int) -> bool:
        rows = await self._write(
            "DELETE FROM scan_rules WHERE id = ? RETURNING id", [(rule_id,)]
        )
        return bool(rows)

    async def _write_rule(
        self, sql: str, params: Sequence[Any], name: str
    ) -> list[Sequence[Any]]:
        try:
            return await self._write(sql, [params])
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise Conflict(
                    f"Scan rule with name '{name}' already exists", field="name"
                ) from exc
            raise

    # Media index ------------------------------------------------------------

    async def index_under(self, folder: str) -> dict[str, IndexEntry]:
        """Every indexed file below ``folder``, by path."""
        low, high = subtree_bounds(folder)
        rows = await self._read(
            f"SELECT {_INDEX_FIELDS} FROM media_index WHERE path >= ? AND path < ?",
            (low, high),
        )
        return {row[0]: _row_to_entry(row) for row in rows}

    async def index_entry(self, path: str) -> IndexEntry | None:
        rows = await self._read(
            f"SELECT {_INDEX_FIELDS} FROM media_index WHERE path = ?", (path,)
        )
        return _row_to_entry(rows[0]) if rows else None

    async def save_entries(self, entries: Iterable[IndexEntry], now_s: float) -> None:
        """Insert or replace index entries in one transaction."""
        sql = (
            f"INSERT OR REPLACE INTO media_index ({_INDEX_FIELDS}, indexed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        rows = [
            (
                e.path,
                e.size_bytes,
                e.mtime_ns,
                e.probe,
                e.probe_error,
                ",".join(sorted(e.submitted)),
                now_s,
            )
            for e in entries
        ]
        if rows:
            await self._write_many(sql, rows)

    async def delete_entries(self, paths: Iterable[str]) -> None:
        rows = [(path,) for path in paths]
        if rows:
            await self._write_batches(
                ("DELETE FROM media_index WHERE path = ?", rows),
                ("DELETE FROM language_detections WHERE path = ?", rows),
            )

    # Language detections ----------------------------------------------------

    async def detections(
        self, path: str, size_bytes: int, mtime_ns: int
    ) -> dict[int, Detection]:
        """Cached detections of this version of the file, by track index."""
        rows = await self._read(
            "SELECT track_index, language, probability FROM language_detections"
            " WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
            (path, size_bytes, mtime_ns),
        )
        return {row[0]: Detection(row[0], row[1], row[2]) for row in rows}

    async def save_detections(
        self,
        path: str,
        size_bytes: int,
        mtime_ns: int,
        found: Iterable[Detection],
        now_s: float,
    ) -> None:
        sql = (
            "INSERT OR REPLACE INTO language_detections (path, track_index,"
            " size_bytes, mtime_ns, language, probability, detected_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        rows = [
            (
                path,
                d.track_index,
                size_bytes,
                mtime_ns,
                d.language,
                d.probability,
                now_s,
            )
            for d in found
        ]
        if rows:
            await self._write_many(sql, rows)

    # Scanner state ----------------------------------------------------------

    async def state(self) -> dict[str, Any]:
        """Every stored state value, parsed from JSON."""
        rows = await self._read("SELECT key, value FROM scanner_state")
        return {key: orjson.loads(value) for key, value in rows}

    async def set_state(self, values: dict[str, Any]) -> None:
        sql = "INSERT OR REPLACE INTO scanner_state (key, value) VALUES (?, ?)"
        rows = [(key, orjson.dumps(value).decode()) for key, value in values.items()]
        await self._write_many(sql, rows)

    # Plumbing ---------------------------------------------------------------

    async def _write(
        self, sql: str, param_rows: Sequence[Sequence[Any]]
    ) -> list[Sequence[Any]]:
        return await write_each(self._conn, sql, param_rows, what=_WHAT)

    async def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await write_batches(self._conn, (sql, rows), what=_WHAT)

    async def _write_batches(
        self, *batches: tuple[str, Sequence[Sequence[Any]]]
    ) -> None:
        await write_batches(self._conn, *batches, what=_WHAT)

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await fetch_all(self._conn, sql, params, what=_WHAT)
