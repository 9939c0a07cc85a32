"""Schedules and the scheduler loop, on a clock the tests move by hand."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest

from tests.scanner_library import ManualTime, epoch
from transcriptarr.errors import InvalidInput
from transcriptarr.scheduling import (
    MAX_SLEEP_S,
    CronSchedule,
    IntervalSchedule,
    Scheduler,
    make_schedule,
)


def test_interval_schedule_counts_from_its_anchor() -> None:
    schedule = IntervalSchedule(360, anchor_s=1000.0)
    assert schedule.next_after(1000.0) == 1000.0 + 360 * 60
    assert schedule.next_after(1000.0 + 360 * 60) == 1000.0 + 2 * 360 * 60
    assert schedule.next_after(1000.0 + 361 * 60) == 1000.0 + 2 * 360 * 60
    assert schedule.describe() == "every 360 minutes"


def test_cron_schedule_names_the_next_matching_minute() -> None:
    nightly = CronSchedule("0 2 * * *", UTC)
    assert nightly.next_after(epoch("2025-01-12T10:00:00")) == epoch(
        "2025-01-13T02:00:00"
    )
    assert nightly.next_after(epoch("2025-01-13T01:59:59")) == epoch(
        "2025-01-13T02:00:00"
    )
    assert nightly.next_after(epoch("2025-01-13T02:00:00")) == epoch(
        "2025-01-14T02:00:00"
    )
    assert nightly.describe() == "cron: 0 2 * * *"


def test_cron_schedule_reads_the_expression_in_its_time_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    nightly = CronSchedule("0 2 * * *", plus_two)
    assert nightly.next_after(epoch("2025-01-12T10:00:00")) == epoch(
        "2025-01-13T00:00:00"
    )


def test_cron_expression_wins_over_the_interval() -> None:
    schedule = make_schedule("*/15 * * * *", 360, anchor_s=0.0, tz=UTC)
    assert isinstance(schedule, CronSchedule)
    fallback = make_schedule("  ", 30, anchor_s=0.0)
    assert isinstance(fallback, IntervalSchedule)


@pytest.mark.parametrize(
    "expression", ["0 2 * *", "61 * * * *", "0 2 * * * *", "daily"]
)
def test_invalid_cron_expression_is_refused_naming_the_field(expression: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        make_schedule(expression, None, anchor_s=0.0)
    assert raised.value.field == "cron_expression"


@pytest.mark.parametrize("minutes", [None, 0, -5, 10**9])
def test_interval_out_of_range_is_refused_naming_the_field(
    minutes: float | None,
) -> None:
    with pytest.raises(InvalidInput) as raised:
        make_schedule(None, minutes, anchor_s=0.0)
    assert raised.value.field == "interval_minutes"


async def test_scheduler_runs_at_each_interval_and_not_before() -> None:
    time = ManualTime()
    runs: list[float] = []

    async def run() -> None:
        runs.append(time.clock())

    scheduler = Scheduler(run, clock=time.clock, sleep=time.sleep)
    start_s = time.clock()
    scheduler.start(IntervalSchedule(360, start_s))
    assert scheduler.next_run_s == start_s + 360 * 60

    await time.advance(359 * 60)
    assert runs == []
    await time.advance(60)
    assert runs == [start_s + 360 * 60]
    await time.advance(720 * 60)
    assert runs == [start_s + 360 * 60, start_s + 720 * 60, start_s + 1080 * 60]
    assert scheduler.next_run_s == start_s + 1440 * 60
    await scheduler.stop()


async def test_scheduler_fires_a_cron_schedule_at_its_times() -> None:
    time = ManualTime("2025-01-12T10:00:00")
    runs: list[float] = []

    async def run() -> None:
        runs.append(time.clock())

    scheduler = Scheduler(run, clock=time.clock, sleep=time.sleep)
    scheduler.start(CronSchedule("0 2 * * *", UTC))
    await time.advance(2 * 24 * 3600)
    assert runs == [epoch("2025-01-13T02:00:00"), epoch("2025-01-14T02:00:00")]
    assert time.longest_sleep_s <= MAX_SLEEP_S
    await scheduler.stop()


async def test_failing_run_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = ManualTime()
    runs: list[float] = []

    async def run() -> None:
        runs.append(time.clock())
        raise RuntimeError("disk on fire")

    scheduler = Scheduler(run, clock=time.clock, sleep=time.sleep, name="scans")
    scheduler.start(IntervalSchedule(1, time.clock()))
    await time.advance(120)
    assert len(runs) == 2
    assert "scans: the scheduled run failed" in caplog.text
    await scheduler.stop()


async def test_run_longer_than_the_interval_skips_the_missed_times() -> None:
    time = ManualTime()
    runs: list[float] = []

    async def run() -> None:
        runs.append(time.clock())
        time.clock.advance(150)

    scheduler = Scheduler(run, clock=time.clock, sleep=time.sleep)
    start_s = time.clock()
    scheduler.start(IntervalSchedule(1, start_s))
    await time.advance(60)
    assert runs == [start_s + 60]
    assert scheduler.next_run_s == start_s + 240
    await scheduler.stop()


async def test_stopped_scheduler_runs_no_more_and_has_no_next_time() -> None:
    time = ManualTime()
    runs: list[float] = []

    async def run() -> None:
        runs.append(time.clock())

    scheduler = Scheduler(run, clock=time.clock, sleep=time.sleep)
    scheduler.start(IntervalSchedule(1, time.clock()))
    assert scheduler.running
    await scheduler.stop()
    await time.advance(600)
    assert runs == []
    assert not scheduler.running
    assert scheduler.next_run_s is None
    assert scheduler.schedule is None


async def test_starting_again_replaces_the_schedule() -> None:
    time = ManualTime()
    runs: list[float] = []

    async def run() -> None:
        runs.append(time.clock())

    scheduler = Scheduler(run, clock=time.clock, sleep=time.sleep)
    start_s = time.clock()
    scheduler.start(IntervalSchedule(60, start_s))
    scheduler.start(IntervalSchedule(1, start_s))
    await time.advance(90)
    assert runs == [start_s + 60]
    await scheduler.stop()
