"""Versioned schema migrations, applied in order inside one transaction each.

Append a new ``(version, sql)`` pair to ``MIGRATIONS``; never edit one that has
shipped.
"""

from __future__ import annotations

import logging
import time

import aiosqlite

logger = logging.getLogger(__name__)

_JOBS = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    file_path TEXT NOT NULL,
    file_name TEXT NOT NULL,
    job_type TEXT NOT NULL DEFAULT 'transcription',
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    source_lang TEXT,
    target_lang TEXT NOT NULL,
    quality_preset TEXT NOT NULL,
    transcribe_or_translate TEXT NOT NULL,
    is_manual_request INTEGER NOT NULL DEFAULT 1,
    progress REAL NOT NULL DEFAULT 0,
    current_stage TEXT,
    eta_seconds INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    output_path TEXT,
    segments_count INTEGER,
    error TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 3,
    worker_id TEXT,
    vram_used_mb INTEGER,
    processing_time_seconds REAL,
    model_used TEXT,
    device_used TEXT,
    available_at REAL NOT NULL DEFAULT 0,
    lease_id TEXT,
    lease_expires_at REAL
);
CREATE UNIQUE INDEX jobs_one_active_per_file
    ON jobs (file_path, target_lang) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_claim_order
    ON jobs (priority DESC, seq) WHERE status = 'queued';
CREATE INDEX jobs_by_status ON jobs (status, seq DESC);

CREATE TABLE settings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL,
    description TEXT,
    category TEXT NOT NULL,
    value_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
"""

MIGRATIONS: list[tuple[int, str]] = [(1, _JOBS)]

# Library scanning: the rules, the index of every media file seen (so a rescan
# of an unchanged library probes nothing), cached language detections, and the
# scanner's own counters and scheduler configuration.
_SCANNER = """
CREATE TABLE scan_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    enabled INTEGER NOT NULL DEFAULT 1,
    priority INTEGER NOT NULL DEFAULT 0,
    conditions TEXT NOT NULL,
    action TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE TABLE media_index (
    path TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    probe TEXT,
    probe_error TEXT,
    submitted TEXT NOT NULL DEFAULT '',
    indexed_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE language_detections (
    path TEXT NOT NULL,
    track_index INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    language TEXT,
    probability REAL,
    detected_at REAL NOT NULL,
    PRIMARY KEY (path, track_index)
) WITHOUT ROWID;

CREATE TABLE scanner_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""
MIGRATIONS.append((2, _SCANNER))


async def migrate(conn: aiosqlite.Connection) -> None:
    """Bring the schema up to the newest version."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        async with conn.execute("SELECT version FROM schema_migrations") as cur:
            applied = {row[0] for row in await cur.fetchall()}
        for version, sql in MIGRATIONS:
            if version in applied:
                continue
            for statement in _statements(sql):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, time.time()),
            )
            logger.info("applied schema migration %d", version)
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


def _statements(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";") if part.strip()]
