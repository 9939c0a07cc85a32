"""The file-system half of a library scan: walking folders and probing.

Everything here blocks and runs in threads the scanner starts. :func:`walk`
lists a library once, collecting for each media file its size, mtime, the
names beside it (to tell whether our output exists) and the subtitle files
that belong to it, so a rescan needs no second look at any folder.
:func:`probe_entry` probes one file into an index entry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from transcriptarr.errors import TranscriptarrError
from transcriptarr.media.probe import probe
from transcriptarr.media.subtitles import (
    SUBTITLE_EXTENSIONS,
    LanguageStyle,
    OutputFormat,
    find_external_subtitles,
    output_path_for,
)
from transcriptarr.store.scanner import IndexEntry

logger = logging.getLogger(__name__)

SKIP_MARKER = ".transcriptarr-skip"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A media file found by a walk, with what a rescan needs to know.

    Attributes:
        path: The file.
        size_bytes: Its size when it was listed.
        mtime_ns: Its modification time when it was listed.
        siblings: Every name in its folder.
        external: ``ExternalSubtitle.to_dict()`` of the subtitle files that
            belong to it.
    """

    path: Path
    size_bytes: int
    mtime_ns: int
    siblings: frozenset[str]
    external: tuple[dict[str, Any], ...]

    def outputs(
        self,
        target_languages: Iterable[str],
        *,
        style: LanguageStyle,
        fmt: OutputFormat,
    ) -> frozenset[str]:
        """The target languages whose output file is already beside the media.

        The same question as ``output_exists``, answered from the folder
        listing the walk already made instead of one stat per language.
        """
        return frozenset(
            code
            for code in target_languages
            if output_path_for(self.path, code, language_style=style, fmt=fmt).name
            in self.siblings
        )


@dataclass
class WalkResult:
    """What one walk of a library folder found."""

    candidates: list[Candidate]
    skipped_folders: list[str]
    unreadable_folders: list[str]


def normalise_extensions(extensions: Iterable[str]) -> frozenset[str]:
    """``mkv``, ``.MKV`` -> ``.mkv``."""
    return frozenset(
        "." + item.strip().lower().lstrip(".") for item in extensions if item.strip()
    )


def walk(root: Path, *, recursive: bool, extensions: frozenset[str]) -> WalkResult:
    """List the media files under ``root`` (blocking).

    Hidden entries (a leading dot) are not entered, a folder holding
    :data:`SKIP_MARKER` is skipped with everything below it, and a symlinked
    folder is followed once (loops are cut).
    """
    result = WalkResult([], [], [])
    seen: set[tuple[int, int]] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            identity = folder.stat()
            entries = list(os.scandir(folder))
        except OSError as exc:
            logger.warning("cannot list %s: %s", folder, exc.strerror or exc)
            result.unreadable_folders.append(str(folder))
            continue
        if (identity.st_dev, identity.st_ino) in seen:
            continue
        seen.add((identity.st_dev, identity.st_ino))
        names = frozenset(entry.name for entry in entries)
        if SKIP_MARKER in names:
            result.skipped_folders.append(str(folder))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if recursive and _is_dir(entry):
                pending.append(Path(entry.path))
                continue
            candidate = _candidate(entry, names, extensions)
            if candidate is not None:
                result.candidates.append(candidate)
    result.candidates.sort(key=lambda c: c.path)
    return result


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _candidate(
    entry: os.DirEntry[str], names: frozenset[str], extensions: frozenset[str]
) -> Candidate | None:
    suffix = os.path.splitext(entry.name)[1].lower()
    if suffix not in extensions:
        return None
    try:
        if not entry.is_file():
            return None
        stat = entry.stat()
    except OSError as exc:
        logger.warning("cannot stat %s: %s", entry.path, exc.strerror or exc)
        return None
    path = Path(entry.path)
    return Candidate(
        path=path,
        size_bytes=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        siblings=names,
        external=_external_subtitles(path, names),
    )


def _external_subtitles(
    path: Path, names: frozenset[str]
) -> tuple[dict[str, Any], ...]:
    """The subtitle files of ``path``; the folder is read again only if some
    name there could be one."""
    prefix = path.stem + "."
    if not any(name.startswith(prefix) and _subtitle_extension(name) for name in names):
        return ()
    return tuple(found.to_dict() for found in find_external_subtitles(path))


def _subtitle_extension(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in SUBTITLE_EXTENSIONS


def candidate_for(path: Path) -> Candidate | None:
    """The :class:`Candidate` of one file (blocking); None when it is gone."""
    try:
        stat = path.stat()
        names = frozenset(os.listdir(path.parent))
    except OSError:
        return None
    if not path.is_file():
        return None
    return Candidate(
        path=path,
        size_bytes=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        siblings=names,
        external=_external_subtitles(path, names),
    )


def skipped_by_marker(folder: Path) -> bool:
    """Whether ``folder`` or a folder above it holds :data:`SKIP_MARKER`."""
    return any((each / SKIP_MARKER).exists() for each in (folder, *folder.parents))


def probe_entry(candidate: Candidate) -> IndexEntry:
    """Probe one file into an index entry; a failure is recorded, not raised."""
    probe_json: str | None = None
    error: str | None = None
    try:
        info = probe(candidate.path).to_dict()
        info.pop("external_subtitles", None)
        probe_json = orjson.dumps(info).decode()
    except TranscriptarrError as exc:
        error = exc.detail
    except Exception as exc:
        # PyAV can fail in ways its own error tree does not cover (a decoder
        # crash on a malformed header); one bad file must not stop a scan.
        logger.exception("unexpected error probing %s", candidate.path)
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        logger.warning("cannot probe %s: %s", candidate.path, error)
    return IndexEntry(
        str(candidate.path),
        candidate.size_bytes,
        candidate.mtime_ns,
        probe_json,
        error,
    )
