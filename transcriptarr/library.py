"""One library scan, from folders to submitted jobs.

:class:`LibraryScanner` walks the scan roots, probes only the files the index
has not seen in their current size and mtime (in parallel threads), decides
each file against the rules, detects the language of untagged audio where a
rule needs it, submits the jobs in batches to the job board, and records in
the index which target languages each version of a file was submitted for. A
rescan of an unchanged library therefore probes nothing and submits nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.detection import LanguageDetector
from transcriptarr.errors import (
    InvalidInput,
    ModelUnavailable,
    NotFound,
    TranscriptarrError,
)
from transcriptarr.media.subtitles import LanguageStyle, OutputFormat
from transcriptarr.models import JobCreate
from transcriptarr.rules import (
    Match,
    MediaFacts,
    NeedsLanguage,
    ScanRule,
    decide,
    facts_from_probe,
    in_order,
    target_languages,
)
from transcriptarr.scanning import (
    Candidate,
    normalise_extensions,
    probe_entry,
    skipped_by_marker,
    walk,
)
from transcriptarr.scheduling import Clock
from transcriptarr.store.scanner import Detection, IndexEntry, ScannerStore

logger = logging.getLogger(__name__)

SUBMIT_BATCH_SIZE = 500
NO_LIBRARY_PATHS = "No library paths configured"


class ScanResult(BaseModel):
    """The response of ``POST /api/scanner/scan``.

    ``matched_files`` counts files that need a job now; a file whose job was
    already submitted for its current version counts as skipped.
    """

    scanned_files: int = 0
    matched_files: int = 0
    jobs_created: int = 0
    skipped_files: int = 0
    paths_scanned: list[str] = Field(default_factory=list)

    def add(self, other: ScanResult) -> None:
        self.scanned_files += other.scanned_files
        self.matched_files += other.matched_files
        self.jobs_created += other.jobs_created
        self.skipped_files += other.skipped_files


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """What one scan runs with, read once at its start."""

    rules: list[ScanRule]
    extensions: frozenset[str]
    recursive: bool = True
    language_style: LanguageStyle = "iso639_1"
    output_format: OutputFormat = "srt"
    sample_offset_s: float = 60.0
    sample_length_s: float = 30.0

    @classmethod
    def from_values(
        cls,
        values: dict[str, Any],
        rules: Iterable[ScanRule],
        *,
        recursive: bool | None = None,
    ) -> ScanSettings:
        """Build from parsed setting values (``SettingsService.values()``)."""
        if recursive is None:
            recursive = bool(values.get("scanner_recursive", True))
        style = values.get("output_language_style")
        offset_s = values.get("transcription_language_sample_offset_s", 60)
        length_s = values.get("transcription_language_sample_length_s", 30)
        return cls(
            rules=in_order(rules),
            extensions=normalise_extensions(values.get("media_extensions") or []),
            recursive=recursive,
            language_style="iso639_2" if style == "iso639_2" else "iso639_1",
            output_format="vtt" if values.get("output_format") == "vtt" else "srt",
            sample_offset_s=float(offset_s),
            sample_length_s=float(length_s),
        )

    @property
    def targets(self) -> frozenset[str]:
        return target_languages(self.rules)


def resolve_request_path(raw: str, *, field: str = "paths") -> Path:
    """An absolute path from a request, resolved (symlinks, ``..``).

    Raises:
        InvalidInput: Empty, relative, or holding a NUL byte.
    """
    if not raw.strip() or "\x00" in raw:
        raise InvalidInput(f"{field}: {raw!r} is not a usable path", field=field)
    if not os.path.isabs(raw):
        raise InvalidInput(f"{field}: {raw!r} is not an absolute path", field=field)
    return Path(os.path.realpath(raw))


def scan_roots(paths: Sequence[str] | None, values: dict[str, Any]) -> list[Path]:
    """Resolved folders to scan or watch.

    Paths given must each be an existing folder. Without any, the
    ``library_paths`` setting is used; a configured path that is missing (an
    unmounted share) is skipped with a warning.

    Raises:
        InvalidInput: No paths given and none configured; a path given is
            not a folder.
        NotFound: A path given does not exist; no configured path does.
    """
    if paths:
        return _outermost([_existing_folder(raw) for raw in paths])
    configured = [str(p) for p in values.get("library_paths") or [] if p]
    if not configured:
        raise InvalidInput(NO_LIBRARY_PATHS, field="paths")
    usable: list[Path] = []
    for raw in configured:
        path = resolve_request_path(raw, field="library_paths")
        if path.is_dir():
            usable.append(path)
        else:
            logger.warning("library path %s is not a folder; skipped", raw)
    if not usable:
        raise NotFound(f"Path not found: {configured[0]}", field="library_paths")
    return _outermost(usable)


def _existing_folder(raw: str) -> Path:
    path = resolve_request_path(raw)
    if not path.exists():
        raise NotFound(f"Path not found: {raw}", field="paths")
    if not path.is_dir():
        raise InvalidInput(f"Path is not a directory: {raw}", field="paths")
    return path


def _outermost(paths: list[Path]) -> list[Path]:
    """Drop paths inside another one of the list (scanned with it anyway)."""
    unique = list(dict.fromkeys(paths))
    return [
        p for p in unique if not any(p != o and p.is_relative_to(o) for o in unique)
    ]


class LibraryScanner:
    """Scans folders or single files into jobs; see the module docstring.

    Callers serialise scans (the ScannerActor holds one lock for all of them).

    Args:
        store: The scanner's tables.
        queue: The job board.
        detector: Language detection for untagged audio.
        pool: Threads that probe files.
        clock: Epoch seconds, stamped on index rows.
    """

    def __init__(
        self,
        store: ScannerStore,
        queue: ActorProxy,
        detector: LanguageDetector,
        pool: Executor,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._queue = queue
        self._detector = detector
        self._pool = pool
        self._clock = clock

    async def scan(self, roots: list[Path], settings: ScanSettings) -> ScanResult:
        """Scan each root folder; the spec's counts over all of them."""
        started_s = time.perf_counter()
        total = ScanResult(paths_scanned=[str(root) for root in roots])
        try:
            for root in roots:
                total.add(await self._scan_root(root, settings))
        finally:
            self._detector.release()
        logger.info(
            "scan done paths=%s scanned=%d matched=%d jobs=%d skipped=%d"
            " elapsed_s=%.1f",
            ",".join(total.paths_scanned),
            total.scanned_files,
            total.matched_files,
            total.jobs_created,
            total.skipped_files,
            time.perf_counter() - started_s,
        )
        return total

    async def check(self, candidate: Candidate, settings: ScanSettings) -> ScanResult:
        """Check one file that just arrived (the watcher's path)."""
        if skipped_by_marker(candidate.path.parent):
            return ScanResult()
        entry = await self._store.index_entry(str(candidate.path))
        index = {entry.path: entry} if entry is not None else {}
        return await self._process([candidate], index, settings)

    async def _scan_root(self, root: Path, settings: ScanSettings) -> ScanResult:
        if skipped_by_marker(root):
            logger.info("skipping %s: it or a folder above holds the marker", root)
            return ScanResult()
        walked = await asyncio.to_thread(
            walk, root, recursive=settings.recursive, extensions=settings.extensions
        )
        index = await self._store.index_under(str(root))
        result = await self._process(walked.candidates, index, settings)

        seen = {str(c.path) for c in walked.candidates}
        kept = [Path(folder) for folder in walked.unreadable_folders]
        gone = [
            path
            for path in index
            if path not in seen
            and (settings.recursive or Path(path).parent == root)
            and not any(Path(path).is_relative_to(folder) for folder in kept)
        ]
        await self._store.delete_entries(gone)
        return result

    async def _process(
        self,
        candidates: list[Candidate],
        index: dict[str, IndexEntry],
        settings: ScanSettings,
    ) -> ScanResult:
        """Probe what changed, decide every file, submit, record."""
        changed = [
            c
            for c in candidates
            if not (found := index.get(str(c.path)))
            or not found.same_version(c.size_bytes, c.mtime_ns)
        ]
        probed = await self._probe_all(changed)
        await self._store.save_entries(probed.values(), self._clock())

        wanted: list[tuple[Candidate, IndexEntry, Match]] = []
        for candidate in candidates:
            key = str(candidate.path)
            entry = probed.get(key) or index[key]
            match = await self._decide(candidate, entry, settings)
            if match is not None:
                wanted.append((candidate, entry, match))

        created = await self._submit([m.job(c.path) for c, _, m in wanted])
        submitted = (
            entry.with_submitted(match.rule.action.target_language)
            for _, entry, match in wanted
        )
        await self._store.save_entries(submitted, self._clock())
        return ScanResult(
            scanned_files=len(candidates),
            matched_files=len(wanted),
            jobs_created=created,
            skipped_files=len(candidates) - len(wanted),
        )

    async def _probe_all(self, candidates: list[Candidate]) -> dict[str, IndexEntry]:
        if not candidates:
            return {}
        loop = asyncio.get_running_loop()
        entries = await asyncio.gather(
            *(loop.run_in_executor(self._pool, probe_entry, c) for c in candidates)
        )
        return {entry.path: entry for entry in entries}

    async def _decide(
        self, candidate: Candidate, entry: IndexEntry, settings: ScanSettings
    ) -> Match | None:
        """The rule this file matches now, unless its job was already asked for."""
        if not settings.rules or settings.targets <= entry.submitted:
            return None
        info = entry.probe_dict()
        if info is None:
            return None
        outputs = candidate.outputs(
            settings.targets,
            style=settings.language_style,
            fmt=settings.output_format,
        )
        facts = facts_from_probe(candidate.path, info, candidate.external, outputs)
        decision = decide(settings.rules, facts)
        if isinstance(decision, NeedsLanguage):
            facts = await self._detect(candidate, info, decision, facts, settings)
            decision = decide(settings.rules, facts)
        if not isinstance(decision, Match):
            return None
        if decision.rule.action.target_language in entry.submitted:
            return None
        return decision

    async def _detect(
        self,
        candidate: Candidate,
        info: dict[str, Any],
        needs: NeedsLanguage,
        facts: MediaFacts,
        settings: ScanSettings,
    ) -> MediaFacts:
        """Fill in the languages of untagged tracks: cached, else detected."""
        key = (str(candidate.path), candidate.size_bytes, candidate.mtime_ns)
        known = await self._store.detections(*key)
        fresh: list[Detection] = []
        for track in needs.track_indexes:
            if track in known:
                continue
            found = await self._detect_track(candidate, info, track, settings)
            if found is not None:
                fresh.append(found)
        await self._store.save_detections(*key, fresh, self._clock())
        detected = {d.track_index: d.language for d in [*known.values(), *fresh]}
        return facts.with_detected(detected)

    async def _detect_track(
        self,
        candidate: Candidate,
        info: dict[str, Any],
        track: int,
        settings: ScanSettings,
    ) -> Detection | None:
        """One detection; None (so nothing is cached) when the model is missing."""
        try:
            return await asyncio.to_thread(
                self._detector.detect,
                candidate.path,
                track,
                duration_s=float(info.get("duration_seconds") or 0.0),
                offset_s=settings.sample_offset_s,
                length_s=settings.sample_length_s,
            )
        except ModelUnavailable as exc:
            logger.error("cannot detect languages: %s", exc.detail)
            return None
        except TranscriptarrError as exc:
            logger.warning(
                "language detection failed for %s track %d: %s",
                candidate.path,
                track,
                exc.detail,
            )
            return Detection(track, None, None)

    async def _submit(self, jobs: list[JobCreate]) -> int:
        """Submit in batches; the number of jobs the board created."""
        created = 0
        for start in range(0, len(jobs), SUBMIT_BATCH_SIZE):
            batch = jobs[start : start + SUBMIT_BATCH_SIZE]
            results = await self._queue.submit_many(batch)
            created += sum(1 for job in results if job is not None)
        return created
