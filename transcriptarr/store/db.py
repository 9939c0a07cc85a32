"""Opening the SQLite file and running write transactions.

Every connection is opened by the process (and thread) that uses it: nothing here
is shared across a fork or an actor boundary. The database is in WAL mode with
``synchronous=FULL`` so a committed write survives a power cut, and every write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the lock
instead of failing half-way with ``SQLITE_BUSY``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from transcriptarr.errors import StoreError
from transcriptarr.store.migrations import migrate

logger = logging.getLogger(__name__)

DB_FILE_NAME = "transcriptarr.db"
BUSY_TIMEOUT_MS = 10_000


async def connect(path: Path, *, readonly: bool = False) -> aiosqlite.Connection:
    """Open ``path`` with the service's pragmas; migrate unless read-only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
        else:
            await migrate(conn)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"Cannot open database {path}: {exc}") from exc
    return conn


# One writer at a time per connection: coroutines sharing a connection would
# otherwise interleave their statements inside each other's transaction.
_write_locks: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def write_transaction(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
    lock = _write_locks.setdefault(conn, asyncio.Lock())
    async with lock:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            await conn.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT: the connection must not stay inside
            # a transaction that every later BEGIN would trip over.
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise


async def ping(conn: aiosqlite.Connection) -> None:
    """Read from the database; raise StoreError when it cannot answer."""
    try:
        async with conn.execute("SELECT count(*) FROM schema_migrations") as cur:
            await cur.fetchone()
    except (sqlite3.Error, ValueError) as exc:
        raise StoreError(f"Database is not usable: {exc}") from exc


async def fetch_all(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = (), *, what: str
) -> list[Any]:
    """Every row of a read; a sqlite error becomes StoreError naming ``what``."""
    try:
        async with conn.execute(sql, params) as cur:
            return list(await cur.fetchall())
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot read {what}: {exc}") from exc


async def write_each(
    conn: aiosqlite.Connection,
    sql: str,
    param_rows: Sequence[Sequence[Any]],
    *,
    what: str,
) -> list[Any]:
    """Run ``sql`` once per parameter row in one transaction.

    Returns:
        The rows the statements returned (``RETURNING``), in order.
    """
    found: list[Any] = []
    try:
        async with write_transaction(conn):
            for params in param_rows:
                async with conn.execute(sql, params) as cur:
                    found.extend(await cur.fetchall())
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot write {what}: {exc}") from exc
    return found


async def write_batches(
    conn: aiosqlite.Connection,
    *batches: tuple[str, Sequence[Sequence[Any]]],
    what: str,
) -> None:
    """Run each ``(sql, rows)`` with executemany, all in one transaction."""
    try:
        async with write_transaction(conn):
            for sql, rows in batches:
                await conn.executemany(sql, rows)
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot write {what}: {exc}") from exc
