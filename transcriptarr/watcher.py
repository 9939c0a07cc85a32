"""Watching library folders with inotify, in a thread of its own.

The watcher reacts to a file closed after writing (a copy finished) and to a
file moved in (how Sonarr and Radarr import), waits until the file's size and
mtime stay unchanged for ``stable_s``, and then hands the path over. It follows
folders created or moved in later, and lists a new folder's files once its
watch is in place, since a file may land there before the watch does.

Two kernel limits are handled rather than hidden: a queue overflow
(``IN_Q_OVERFLOW``: events were lost) asks for a full rescan, and running out
of watches (``ENOSPC``, ``fs.inotify.max_user_watches``) is reported with what
to raise while periodic scans cover the folders left unwatched.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from inotify_simple import INotify
from inotify_simple import flags as inotify_flags

from transcriptarr.media.subtitles import is_own_temporary

logger = logging.getLogger(__name__)

MAX_USER_WATCHES_FILE = Path("/proc/sys/fs/inotify/max_user_watches")
SUGGESTED_MAX_USER_WATCHES = 524288
POLL_INTERVAL_S = 0.25

_FOLDER_MASK = (
    inotify_flags.CLOSE_WRITE
    | inotify_flags.MOVED_TO
    | inotify_flags.CREATE
    | inotify_flags.ONLYDIR
)
_FILE_READY = inotify_flags.CLOSE_WRITE | inotify_flags.MOVED_TO
_FOLDER_ARRIVED = inotify_flags.CREATE | inotify_flags.MOVED_TO


class InotifyEvent(Protocol):
    @property
    def wd(self) -> int: ...

    @property
    def mask(self) -> int: ...

    @property
    def name(self) -> str: ...


class Inotify(Protocol):
    """The part of ``inotify_simple.INotify`` the watcher uses."""

    def add_watch(self, path: str | os.PathLike[str], mask: int) -> int: ...

    def read(self, timeout: int | None = None) -> Iterable[InotifyEvent]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Pending:
    size_bytes: int
    mtime_ns: int
    stable_since_s: float


@dataclass(frozen=True, slots=True)
class WatchLimit:
    """Folders that could not be watched because the kernel ran out of watches."""

    unwatched_folders: int
    max_user_watches: int | None

    def message(self) -> str:
        current = (
            f"fs.inotify.max_user_watches = {self.max_user_watches}"
            if self.max_user_watches is not None
            else "fs.inotify.max_user_watches"
        )
        return (
            f"inotify watch limit reached: {self.unwatched_folders} folders are "
            f"not watched ({current}). Raise it, for example "
            f"`sysctl -w fs.inotify.max_user_watches={SUGGESTED_MAX_USER_WATCHES}` "
            "(and in /etc/sysctl.conf to keep it); until then periodic scans "
            "cover the unwatched folders"
        )


def read_max_user_watches() -> int | None:
    try:
        return int(MAX_USER_WATCHES_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


class LibraryWatcher:
    """Watches ``roots`` and reports media files once they are complete.

    Args:
        roots: Resolved folders to watch.
        extensions: Media extensions (``.mkv``) that count.
        stable_s: How long size and mtime must stay unchanged.
        on_file: Called from the watcher thread with each complete file.
        on_overflow: Called from the watcher thread when events were lost.
        recursive: Watch subfolders too (and follow new ones).
        clock: Monotonic seconds.
        inotify_factory: Makes the inotify instance (tests pass a fake).
        poll_interval_s: How often pending files are looked at.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        extensions: frozenset[str],
        stable_s: float,
        on_file: Callable[[Path], None],
        on_overflow: Callable[[], None],
        recursive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        inotify_factory: Callable[[], Inotify] = INotify,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.roots = list(roots)
        self._extensions = extensions
        self._stable_s = stable_s
        self._on_file = on_file
        self._on_overflow = on_overflow
        self._recursive = recursive
        self._clock = clock
        self._inotify_factory = inotify_factory
        self._poll_ms = max(1, round(poll_interval_s * 1000))
        self._inotify: Inotify | None = None
        self._folders: dict[int, Path] = {}
        self._pending: dict[Path, _Pending] = {}
        self._unwatched = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def watched_paths(self) -> list[str]:
        return [str(root) for root in self.roots]

    @property
    def watch_count(self) -> int:
        return len(self._folders)

    @property
    def pending(self) -> dict[str, int]:
        """Files waiting to be stable, with the size last seen (-1: not yet)."""
        return {str(path): p.size_bytes for path, p in list(self._pending.items())}

    @property
    def watch_limit(self) -> WatchLimit | None:
        """Set once the kernel refused a watch for lack of them."""
        if self._unwatched == 0:
            return None
        return WatchLimit(self._unwatched, read_max_user_watches())

    def start(self, ready_timeout_s: float = 60.0) -> None:
        """Start the thread; returns once the initial watches are in place."""
        if self.running:
            return
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, name="transcriptarr-watcher", daemon=True
        )
        self._thread.start()
        self._ready.wait(ready_timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and close the inotify instance."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._inotify = self._inotify_factory()
            for root in self.roots:
                self._watch_tree(root, announce_files=False)
            logger.info(
                "watching %d folders under %s",
                len(self._folders),
                ", ".join(self.watched_paths),
            )
            self._ready.set()
            while not self._stop.is_set():
                for event in self._inotify.read(timeout=self._poll_ms):
                    self._handle(event)
                self._check_pending()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("the file watcher stopped")
        finally:
            self._ready.set()
            if self._inotify is not None:
                self._inotify.close()
            self._inotify = None
            self._folders.clear()
            self._pending.clear()

    def _watch_tree(self, top: Path, *, announce_files: bool) -> None:
        """Watch ``top`` (and its subfolders when recursive).

        Args:
            top: The folder.
            announce_files: Treat the media files already there as new ones
                (a folder that appeared while the watcher runs).
        """
        pending = [top]
        while pending:
            folder = pending.pop()
            self._add_watch(folder)
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                logger.debug("cannot list %s: %s", folder, exc)
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                if self._recursive and _is_dir(entry):
                    pending.append(path)
                elif announce_files and self._wanted(entry.name):
                    self._remember(path)

    def _add_watch(self, folder: Path) -> None:
        inotify = self._inotify
        if inotify is None:
            return
        try:
            wd = inotify.add_watch(folder, _FOLDER_MASK)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._unwatched += 1
                if self._unwatched == 1:
                    limit = WatchLimit(1, read_max_user_watches())
                    logger.warning("%s", limit.message())
                return
            logger.debug("cannot watch %s: %s", folder, exc)
            return
        self._folders[wd] = folder

    def _handle(self, event: InotifyEvent) -> None:
        if event.mask & inotify_flags.Q_OVERFLOW:
            logger.warning("inotify queue overflowed; asking for a full rescan")
            self._on_overflow()
            return
        if event.mask & inotify_flags.IGNORED:
            self._folders.pop(event.wd, None)
            return
        folder = self._folders.get(event.wd)
        if folder is None or not event.name or event.name.startswith("."):
            return
        path = folder / event.name
        if event.mask & inotify_flags.ISDIR:
            if self._recursive and event.mask & _FOLDER_ARRIVED:
                self._watch_tree(path, announce_files=True)
            return
        if event.mask & _FILE_READY and self._wanted(event.name):
            self._remember(path)

    def _wanted(self, name: str) -> bool:
        if is_own_temporary(name):
            return False
        return os.path.splitext(name)[1].lower() in self._extensions

    def _remember(self, path: Path) -> None:
        """Start (or restart) the wait for ``path`` to be stable."""
        self._pending[path] = _Pending(-1, -1, self._clock())

    def _check_pending(self) -> None:
        now_s = self._clock()
        for path, pending in list(self._pending.items()):
            try:
                stat = path.stat()
            except OSError:
                del self._pending[path]
                continue
            if (stat.st_size, stat.st_mtime_ns) != (
                pending.size_bytes,
                pending.mtime_ns,
            ):
                self._pending[path] = _Pending(stat.st_size, stat.st_mtime_ns, now_s)
            elif now_s - pending.stable_since_s >= self._stable_s:
                del self._pending[path]
                self._emit(path)

    def _emit(self, path: Path) -> None:
        logger.info("new media file %s", path)
        try:
            self._on_file(path)
        except Exception:
            logger.exception("handling new file %s failed", path)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
