"""When scheduled scans run: a cron expression or an interval, and the loop.

Times are epoch seconds from an injected clock, so tests move time by hand.
A cron expression is read in the server's local time zone (``0 2 * * *`` is
2 AM where the server is, as cron itself reads it); the REST API reports the
next run in UTC.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from croniter import croniter

from transcriptarr.errors import InvalidInput

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# The loop wakes at least this often to read the clock again, so a clock that
# jumps (suspend, NTP) delays a scan by a minute at most.
MAX_SLEEP_S = 60.0
MIN_INTERVAL_MINUTES = 0.05
MAX_INTERVAL_MINUTES = 60 * 24 * 366


class Schedule(Protocol):
    """When runs are due."""

    def next_after(self, moment_s: float) -> float:
        """The first run strictly after ``moment_s`` (epoch seconds)."""

    def describe(self) -> str:
        """How the schedule reads to a user (``every 360 minutes``)."""


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """Every ``interval_minutes``, counted from ``anchor_s``."""

    interval_minutes: float
    anchor_s: float

    def next_after(self, moment_s: float) -> float:
        period_s = self.interval_minutes * 60.0
        periods = math.floor((moment_s - self.anchor_s) / period_s) + 1
        return self.anchor_s + max(periods, 1) * period_s

    def describe(self) -> str:
        return f"every {self.interval_minutes:g} minutes"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A five-field cron expression in time zone ``tz``."""

    expression: str
    tz: tzinfo | None = None

    def next_after(self, moment_s: float) -> float:
        start = datetime.fromtimestamp(moment_s, tz=self.tz or _local_zone())
        following: datetime = croniter(self.expression, start).get_next(datetime)
        return following.timestamp()

    def describe(self) -> str:
        return f"cron: {self.expression}"


def _local_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


def make_schedule(
    cron_expression: str | None,
    interval_minutes: float | None,
    *,
    anchor_s: float,
    tz: tzinfo | None = None,
) -> Schedule:
    """A cron schedule when an expression is given, else an interval one.

    Raises:
        InvalidInput: The expression is not valid cron, or the interval is not
            between 3 seconds and a year.
    """
    expression = (cron_expression or "").strip()
    if expression:
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise InvalidInput(
                f"cron_expression: {expression!r} is not a five-field cron "
                "expression (minute hour day month weekday)",
                field="cron_expression",
            )
        return CronSchedule(expression, tz)
    if (
        interval_minutes is None
        or not MIN_INTERVAL_MINUTES <= interval_minutes <= MAX_INTERVAL_MINUTES
    ):
        raise InvalidInput(
            f"interval_minutes: {interval_minutes!r} is not between "
            f"{MIN_INTERVAL_MINUTES} and {MAX_INTERVAL_MINUTES}",
            field="interval_minutes",
        )
    return IntervalSchedule(interval_minutes, anchor_s)


class Scheduler:
    """Runs a coroutine at each time a :class:`Schedule` names.

    A run that overlaps the next due time does not queue a second one: the
    next run is the first due time after the run ends.

    Args:
        run: What to run; its errors are logged and the loop goes on.
        clock: Epoch seconds.
        sleep: Waits that many seconds (``asyncio.sleep``).
        name: Used in log lines.
    """

    def __init__(
        self,
        run: Callable[[], Awaitable[object]],
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        name: str = "scheduler",
    ) -> None:
        self._run = run
        self._clock = clock
        self._sleep = sleep
        self._name = name
        self._schedule: Schedule | None = None
        self._next_s: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def next_run_s(self) -> float | None:
        """When the next run is due; None when stopped."""
        return self._next_s if self.running else None

    @property
    def schedule(self) -> Schedule | None:
        return self._schedule if self.running else None

    def start(self, schedule: Schedule) -> None:
        """Run on ``schedule`` from now on, replacing any previous schedule."""
        self._cancel()
        self._schedule = schedule
        self._next_s = schedule.next_after(self._clock())
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(schedule, self._next_s))
        logger.info("%s started (%s)", self._name, schedule.describe())

    async def stop(self) -> None:
        """Stop; a run in progress is cancelled."""
        task = self._cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
            logger.info("%s stopped", self._name)

    def _cancel(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        self._next_s = None
        if task is not None:
            task.cancel()
        return task

    async def _loop(self, schedule: Schedule, due_s: float) -> None:
        while True:
            while (remaining_s := due_s - self._clock()) > 0:
                await self._sleep(min(remaining_s, MAX_SLEEP_S))
            try:
                await self._run()
            except Exception:
                logger.exception("%s: the scheduled run failed", self._name)
            due_s = schedule.next_after(max(self._clock(), due_s))
            self._next_s = due_s
