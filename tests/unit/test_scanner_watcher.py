"""The inotify watcher on its own: real inotify in a temporary folder, and a
fake one for the kernel limits a test cannot reach."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from inotify_simple import flags

from tests.scanner_library import FIXTURES
from transcriptarr.media.subtitles import TEMP_SUFFIX
from transcriptarr.watcher import LibraryWatcher

WAIT_S = 20.0
EXTENSIONS = frozenset({".mkv", ".mp4"})


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after a generous deadline."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Reports:
    """What the watcher handed over, collected from its thread."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.overflows = 0
        self._lock = threading.Lock()

    def on_file(self, path: Path) -> None:
        with self._lock:
            self.files.append(path)

    def on_overflow(self) -> None:
        with self._lock:
            self.overflows += 1

    def names(self) -> list[str]:
        with self._lock:
            return [path.name for path in self.files]


class ManualClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def start_watcher(
    tmp_path: Path, reports: Reports
) -> Iterator[Callable[..., LibraryWatcher]]:
    started: list[LibraryWatcher] = []

    def start(**overrides: Any) -> LibraryWatcher:
        options: dict[str, Any] = {
            "extensions": EXTENSIONS,
            "stable_s": 0.1,
            "on_file": reports.on_file,
            "on_overflow": reports.on_overflow,
            "poll_interval_s": 0.02,
        }
        options.update(overrides)
        roots = options.pop("roots", [tmp_path])
        watcher = LibraryWatcher(roots, **options)
        watcher.start()
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def copy_in(name: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / name, target)
    return target


def test_file_copied_in_is_reported_once(
    start_watcher: Callable[..., LibraryWatcher], reports: Reports, tmp_path: Path
) -> None:
    start_watcher()
    copy_in("english.mkv", tmp_path / "episode.mkv")
    wait_for(lambda: reports.names() == ["episode.mkv"], "the copied file")
    copy_in("english.mkv", tmp_path / "sentinel.mkv")
    wait_for(lambda: "sentinel.mkv" in reports.names(), "the sentinel")
    assert reports.names() == ["episode.mkv", "sentinel.mkv"]


def test_file_moved_in_is_reported_once(
    start_watcher: Callable[..., LibraryWatcher],
    reports: Reports,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    start_watcher(roots=[library])
    staged = copy_in("spanish.mkv", tmp_path_factory.mktemp("downloads") / "ep.mkv")
    os.rename(staged, library / "ep.mkv")
    wait_for(lambda: reports.names() == ["ep.mkv"], "the moved file")


def test_file_still_being_written_is_not_reported_until_closed(
    start_watcher: Callable[..., LibraryWatcher], reports: Reports, tmp_path: Path
) -> None:
    start_watcher()
    whole = (FIXTURES / "english.mkv").read_bytes()
    with (tmp_path / "partial.mkv").open("wb") as partial:
        partial.write(whole[: len(whole) // 2])
        partial.flush()
        copy_in("english.mkv", tmp_path / "sentinel.mkv")
        wait_for(lambda: "sentinel.mkv" in reports.names(), "the sentinel")
        assert reports.names() == ["sentinel.mkv"]
        partial.write(whole[len(whole) // 2 :])
    wait_for(lambda: "partial.mkv" in reports.names(), "the finished file")
    assert reports.names() == ["sentinel.mkv", "partial.mkv"]


def test_file_is_reported_only_once_its_size_stays_unchanged(
    start_watcher: Callable[..., LibraryWatcher], reports: Reports, tmp_path: Path
) -> None:
    clock = ManualClock()
    watcher = start_watcher(clock=clock, stable_s=5.0)
    target = copy_in("english.mkv", tmp_path / "growing.mkv")
    first_size = target.stat().st_size
    wait_for(lambda: watcher.pending == {str(target): first_size}, "a first look")

    clock.now_s = 4.0
    with target.open("ab") as more:
        more.write(b"\0" * 1000)
    grown = {str(target): first_size + 1000}
    wait_for(lambda: watcher.pending == grown, "the new size")

    clock.now_s = 6.0
    sentinel = copy_in("english.mkv", tmp_path / "sentinel.mkv")
    wait_for(lambda: watcher.pending.get(str(sentinel), -1) > 0, "a later look")
    assert reports.names() == []
    assert str(target) in watcher.pending

    clock.now_s = 9.0
    wait_for(lambda: reports.names() == ["growing.mkv"], "the stable file")


def test_folder_created_later_is_followed(
    start_watcher: Callable[..., LibraryWatcher], reports: Reports, tmp_path: Path
) -> None:
    start_watcher()
    season = tmp_path / "Show" / "Season 1"
    season.mkdir(parents=True)
    copy_in("english.mkv", season / "e1.mkv")
    wait_for(lambda: reports.names() == ["e1.mkv"], "a file in a new folder")
    copy_in("english.mkv", season / "e2.mkv")
    wait_for(lambda: reports.names() == ["e1.mkv", "e2.mkv"], "a second file")


def test_folder_moved_in_with_files_reports_each_file(
    start_watcher: Callable[..., LibraryWatcher],
    reports: Reports,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    start_watcher(roots=[library])
    staged = tmp_path_factory.mktemp("downloads") / "Movie (2020)"
    copy_in("english.mkv", staged / "movie.mkv")
    copy_in("english.mkv", staged / "extras" / "trailer.mkv")
    os.rename(staged, library / "Movie (2020)")
    wait_for(lambda: len(reports.names()) == 2, "both files")
    assert sorted(reports.names()) == ["movie.mkv", "trailer.mkv"]


def test_our_temporary_files_subtitles_and_hidden_files_are_ignored(
    start_watcher: Callable[..., LibraryWatcher], reports: Reports, tmp_path: Path
) -> None:
    start_watcher()
    (tmp_path / f".episode.es.srt.0a1b2c{TEMP_SUFFIX}").write_text("1\n")
    (tmp_path / "episode.es.srt").write_text("1\n")
    copy_in("english.mkv", tmp_path / ".hidden.mkv")
    copy_in("english.mkv", tmp_path / "sentinel.mkv")
    wait_for(lambda: "sentinel.mkv" in reports.names(), "the sentinel")
    assert reports.names() == ["sentinel.mkv"]


class Event(NamedTuple):
    wd: int
    mask: int
    cookie: int
    name: str


class FakeInotify:
    """Refuses watches beyond ``max_watches``; reads scripted events."""

    def __init__(self, max_watches: int, events: list[Event] | None = None) -> None:
        self.max_watches = max_watches
        self.watched: list[str] = []
        self.events = list(events or [])
        self.closed = False

    def add_watch(self, path: str | os.PathLike[str], mask: int) -> int:
        if len(self.watched) >= self.max_watches:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.watched.append(str(path))
        return len(self.watched)

    def read(self, timeout: int | None = None) -> list[Event]:
        if self.events:
            return [self.events.pop(0)]
        time.sleep((timeout or 0) / 1000)
        return []

    def close(self) -> None:
        self.closed = True


def test_watch_limit_is_reported_with_what_to_raise(
    start_watcher: Callable[..., LibraryWatcher], tmp_path: Path
) -> None:
    for folder in ("a", "b", "c/d"):
        (tmp_path / folder).mkdir(parents=True)
    fake = FakeInotify(max_watches=2)
    watcher = start_watcher(inotify_factory=lambda: fake)
    limit = watcher.watch_limit
    assert limit is not None
    assert limit.unwatched_folders == 3
    message = limit.message()
    assert "fs.inotify.max_user_watches" in message
    assert "sysctl -w fs.inotify.max_user_watches=524288" in message
    assert "periodic scans" in message
    assert watcher.running


def test_no_watch_limit_is_reported_when_every_folder_is_watched(
    start_watcher: Callable[..., LibraryWatcher], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    watcher = start_watcher()
    assert watcher.watch_limit is None
    assert watcher.watch_count == 2


def test_queue_overflow_asks_for_a_full_rescan(
    start_watcher: Callable[..., LibraryWatcher], reports: Reports
) -> None:
    fake = FakeInotify(10, [Event(-1, flags.Q_OVERFLOW, 0, "")])
    start_watcher(inotify_factory=lambda: fake)
    wait_for(lambda: reports.overflows == 1, "the overflow")


def test_stopped_watcher_closes_inotify(
    start_watcher: Callable[..., LibraryWatcher],
) -> None:
    fake = FakeInotify(10)
    watcher = start_watcher(inotify_factory=lambda: fake)
    watcher.stop()
    assert not watcher.running
    assert fake.closed
