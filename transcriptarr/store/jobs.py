"""Queries on the ``jobs`` table.

Each state transition is one statement guarded by the state it leaves (``WHERE
status = 'queued'``, ``WHERE lease_id = ?``), so two callers racing on the same
job cannot both win, in one process or across several.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from transcriptarr.errors import Conflict, StoreError
from transcriptarr.models import (
    Job,
    JobCreate,
    JobResult,
    JobStatus,
    ProgressReport,
    iso_utc,
    utc_now,
)
from transcriptarr.store.db import fetch_all, write_each, write_transaction

_JOB_FIELDS = tuple(Job.model_fields)
_SELECT = "SELECT " + ", ".join(_JOB_FIELDS) + " FROM jobs"
_RETURNING = " RETURNING " + ", ".join(_JOB_FIELDS)

_INSERT = (
    "INSERT INTO jobs (id, file_path, file_name, status, priority, source_lang,"
    " target_lang, quality_preset, transcribe_or_translate, is_manual_request,"
    " created_at, max_retries, available_at)"
    " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, 0)"
    " ON CONFLICT DO NOTHING" + _RETURNING
)

_CLAIM = (
    "UPDATE jobs SET status = 'processing', worker_id = ?, lease_id = ?,"
    " lease_expires_at = ?, started_at = ?, progress = 0, current_stage = NULL,"
    " eta_seconds = NULL, error = NULL"
    " WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim_order"
    " WHERE status = 'queued'"
    " AND available_at <= ? ORDER BY priority DESC, seq LIMIT 1)"
    " AND status = 'queued'" + _RETURNING + ", is_manual_request"
)


def row_to_job(row: sqlite3.Row | Sequence[Any]) -> Job:
    """A database row (selected with the Job fields first) as a Job."""
    return Job.model_validate(dict(zip(_JOB_FIELDS, row, strict=False)))


@dataclass(frozen=True, slots=True)
class Claimed:
    job: Job
    is_manual_request: bool


class JobStore:
    """The job table, over one read-write and one read-only connection."""

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection
    ) -> None:
        self._writer = writer
        self._reader = reader

    async def insert_many(
        self, jobs: Sequence[tuple[str, JobCreate]], *, max_retries: int
    ) -> list[Job | None]:
        """Insert jobs in one transaction; None where a duplicate is active."""
        created_at = iso_utc(utc_now())
        results: list[Job | None] = []
        try:
            async with write_transaction(self._writer):
                for job_id, create in jobs:
                    params = (
                        job_id,
                        create.file_path,
                        create.file_name,
                        create.priority,
                        create.source_lang,
                        create.target_lang,
                        create.quality_preset.value,
                        create.transcribe_or_translate.value,
                        int(create.is_manual_request),
                        created_at,
                        max_retries,
                    )
                    async with self._writer.execute(_INSERT, params) as cur:
                        row = await cur.fetchone()
                    results.append(None if row is None else row_to_job(row))
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot store jobs: {exc}") from exc
        return results

    async def claim_next(
        self, worker_id: str, lease_id: str, *, now_s: float, lease_s: float
    ) -> Claimed | None:
        """Lease the best queued job that is due, in one atomic statement."""
        params = (
            worker_id,
            lease_id,
            now_s + lease_s,
            iso_utc(utc_now()),
            now_s,
        )
        row = await self._write_one(_CLAIM, params)
        if row is None:
            return None
        return Claimed(job=row_to_job(row), is_manual_request=bool(row[-1]))

    async def write_progress(
        self, reports: Iterable[tuple[str, str, ProgressReport, float]]
    ) -> None:
        """Write coalesced progress reports (job, lease, report, lease end)."""
        rows = [
            (r.stage.value, r.progress, r.eta_seconds, expires, job_id, lease_id)
            for job_id, lease_id, r, expires in reports
        ]
        if not rows:
            return
        sql = (
            "UPDATE jobs SET current_stage = ?, progress = ?, eta_seconds = ?,"
            " lease_expires_at = ? WHERE id = ? AND lease_id = ?"
            " AND status = 'processing'"
        )
        try:
            async with write_transaction(self._writer):
                await self._writer.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot store progress: {exc}") from exc

    async def complete(
        self, job_id: str, lease_id: str, result: JobResult
    ) -> Job | None:
        """Mark a leased job completed; None when the lease is not current."""
        sql = (
            "UPDATE jobs SET status = 'completed', completed_at = ?,"
            " progress = 100, current_stage = 'finalizing', eta_seconds = NULL,"
            " output_path = ?, segments_count = ?,"
            " source_lang = coalesce(source_lang, ?), model_used = ?,"
            " device_used = ?, vram_used_mb = ?, processing_time_seconds = ?,"
            " error = ?, lease_id = NULL, lease_expires_at = NULL"
            " WHERE id = ? AND lease_id = ? AND status = 'processing'" + _RETURNING
        )
        params = (
            iso_utc(utc_now()),
            result.output_path,
            result.segments_count,
            result.source_lang,
            result.model_used,
            result.device_used,
            result.vram_used_mb,
            result.processing_time_seconds,
            result.note,
            job_id,
            lease_id,
        )
        row = await self._write_one(sql, params)
        return None if row is None else row_to_job(row)

    async def requeue(
        self,
        job_id: str,
        lease_id: str | None,
        *,
        error: str,
        available_at_s: float,
    ) -> Job | None:
        """Put a processing job back in the queue, counting the attempt."""
        sql = (
            "UPDATE jobs SET status = 'queued', retry_count = retry_count + 1,"
            " error = ?, available_at = ?, worker_id = NULL, lease_id = NULL,"
            " lease_expires_at = NULL, progress = 0, current_stage = NULL,"
            " eta_seconds = NULL, started_at = NULL"
            " WHERE id = ? AND status = 'processing'"
            " AND (? IS NULL OR lease_id = ?)" + _RETURNING
        )
        params = (error, available_at_s, job_id, lease_id, lease_id)
        row = await self._write_one(sql, params)
        return None if row is None else row_to_job(row)

    async def fail(
        self, job_id: str, lease_id: str | None, *, error: str
    ) -> Job | None:
        """Mark a processing job failed, keeping the error."""
        sql = (
            "UPDATE jobs SET status = 'failed', error = ?, completed_at = ?,"
            " eta_seconds = NULL, lease_id = NULL, lease_expires_at = NULL"
            " WHERE id = ? AND status = 'processing'"
            " AND (? IS NULL OR lease_id = ?)" + _RETURNING
        )
        params = (error, iso_utc(utc_now()), job_id, lease_id, lease_id)
        row = await self._write_one(sql, params)
        return None if row is None else row_to_job(row)

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or processing job; None if it is terminal."""
        sql = (
            "UPDATE jobs SET status = 'cancelled', completed_at = ?,"
            " eta_seconds = NULL, lease_id = NULL, lease_expires_at = NULL"
            " WHERE id = ? AND status IN ('queued', 'processing')" + _RETURNING
        )
        row = await self._write_one(sql, (iso_utc(utc_now()), job_id))
        return None if row is None else row_to_job(row)

    async def retry(self, job_id: str) -> Job | None:
        """Put a failed job back in the queue; None if it is not failed."""
        sql = (
            "UPDATE jobs SET status = 'queued', retry_count = 0, error = NULL,"
            " available_at = 0, progress = 0, current_stage = NULL,"
            " started_at = NULL, completed_at = NULL, worker_id = NULL"
            " WHERE id = ? AND status = 'failed'" + _RETURNING
        )
        try:
            row = await self._write_one(sql, (job_id,))
        except StoreError as exc:
            if "UNIQUE" in str(exc):
                raise Conflict(
                    f"Another job for this file is already active; job {job_id}"
                    " was not retried"
                ) from exc
            raise
        return None if row is None else row_to_job(row)

    async def requeue_all_processing(self) -> tuple[list[Job], list[Job]]:
        """On start: every processing job goes back (or fails past its retries).

        Returns:
            The jobs queued again and the jobs that ran out of attempts.
        """
        requeue_sql = (
            "UPDATE jobs SET status = 'queued', retry_count = retry_count + 1,"
            " error = 'interrupted by a restart', available_at = 0,"
            " worker_id = NULL, lease_id = NULL, lease_expires_at = NULL,"
            " progress = 0, current_stage = NULL, eta_seconds = NULL,"
            " started_at = NULL"
            " WHERE status = 'processing' AND retry_count < max_retries" + _RETURNING
        )
        fail_sql = (
            "UPDATE jobs SET status = 'failed', completed_at = ?,"
            " error = coalesce(error, 'interrupted by a restart'),"
            " lease_id = NULL, lease_expires_at = NULL"
            " WHERE status = 'processing'" + _RETURNING
        )
        try:
            async with write_transaction(self._writer):
                async with self._writer.execute(requeue_sql) as cur:
                    queued = [row_to_job(r) for r in await cur.fetchall()]
                async with self._writer.execute(fail_sql, (iso_utc(utc_now()),)) as cur:
                    failed = [row_to_job(r) for r in await cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot recover jobs: {exc}") from exc
        return queued, failed

    async def clear_completed(self) -> int:
        try:
            async with write_transaction(self._writer):
                cur = await self._writer.execute(
                    "DELETE FROM jobs WHERE status = 'completed'"
                )
                count = cur.rowcount
                await cur.close()
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot clear jobs: {exc}") from exc
        return count

    async def counts(self) -> dict[JobStatus, int]:
        rows = await self._read("SELECT status, count(*) FROM jobs GROUP BY status")
        counts = dict.fromkeys(JobStatus, 0)
        for status, count in rows:
            counts[JobStatus(status)] = count
        return counts

    async def next_due_at(self, now_s: float) -> float | None:
        """When the earliest queued job in backoff becomes claimable."""
        rows = await self._read(
            "SELECT min(available_at) FROM jobs WHERE status = 'queued'"
            " AND available_at > ?",
            (now_s,),
        )
        value = rows[0][0] if rows else None
        return None if value is None else float(value)

    async def get(self, job_id: str) -> Job | None:
        rows = await self._read(_SELECT + " WHERE id = ?", (job_id,))
        return row_to_job(rows[0]) if rows else None

    async def page(
        self, status: JobStatus | None, *, limit: int, offset: int
    ) -> list[Job]:
        """Newest first, optionally of one status."""
        return [row_to_job(row) for row in await self._page_rows(status, limit, offset)]

    async def page_dicts(
        self, status: JobStatus | None, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Like :meth:`page`, as JSON-ready dicts (the columns hold JSON types).

        The list route's hot path: it skips building models that would only
        be dumped again.
        """
        rows = await self._page_rows(status, limit, offset)
        return [dict(zip(_JOB_FIELDS, row, strict=True)) for row in rows]

    async def _page_rows(
        self, status: JobStatus | None, limit: int, offset: int
    ) -> list[Any]:
        where = "" if status is None else " WHERE status = ?"
        params: tuple[Any, ...] = () if status is None else (status.value,)
        sql = _SELECT + where + " ORDER BY seq DESC LIMIT ? OFFSET ?"
        return await self._read(sql, (*params, limit, offset))

    async def _write_one(self, sql: str, params: Sequence[Any]) -> Any:
        rows = await write_each(self._writer, sql, [params], what="jobs")
        return rows[0] if rows else None

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await fetch_all(self._reader, sql, params, what="jobs")
