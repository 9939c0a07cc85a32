"""The ScannerActor's scans, driven as plain objects over a real library."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clock import FakeClock
from tests.scanner_library import (
    EXPECTED_JOBS,
    RULES,
    SCANNED_FILES,
    FakeDetector,
    build_library,
    job_rows,
    media,
    subtitle_file,
)
from transcriptarr import library, scanning
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService
from transcriptarr.errors import InvalidInput, MediaError, NotFound
from transcriptarr.media.probe import MediaInfo, probe
from transcriptarr.models import Job, JobCreate

ScannerFactory = Callable[..., ScannerService]


@pytest.fixture
def detector() -> FakeDetector:
    return FakeDetector()


@pytest.fixture
async def make_scanner(
    db_path: Path,
    board: JobBoard,
    settings_service: SettingsService,
    detector: FakeDetector,
    clock: FakeClock,
) -> AsyncIterator[ScannerFactory]:
    """Scanner services over the test's database, closed after the test."""
    made: list[ScannerService] = []

    def make(**overrides: Any) -> ScannerService:
        options: dict[str, Any] = {
            "queue": board,
            "settings": settings_service,
            "detector": detector,
            "clock": clock,
        }
        options.update(overrides)
        service = ScannerService(db_path, **options)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


@pytest.fixture
async def scanner(make_scanner: ScannerFactory) -> ScannerService:
    service = make_scanner()
    await service.start()
    return service


@pytest.fixture
def library_root(tmp_path: Path) -> Path:
    return build_library(tmp_path / "library")


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every probe the scanner makes: (file name, thread name)."""
    made: list[tuple[str, str]] = []

    def counting_probe(path: str | Path) -> MediaInfo:
        made.append((Path(path).name, threading.current_thread().name))
        return probe(path)

    monkeypatch.setattr(scanning, "probe", counting_probe)
    return made


async def add_rules(scanner: ScannerService) -> None:
    for body in RULES:
        await scanner.create_rule(body)


async def all_jobs(board: JobBoard) -> list[Job]:
    return (await board.list_jobs(page_size=500)).jobs


async def test_scan_creates_exactly_the_jobs_a_careful_person_lists(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    result = await scanner.scan([str(library_root)])
    assert result == {
        "scanned_files": SCANNED_FILES,
        "matched_files": len(EXPECTED_JOBS),
        "jobs_created": len(EXPECTED_JOBS),
        "skipped_files": SCANNED_FILES - len(EXPECTED_JOBS),
        "paths_scanned": [str(library_root)],
    }
    assert job_rows(await all_jobs(board), library_root) == EXPECTED_JOBS


async def test_second_scan_of_an_unchanged_library_probes_and_creates_nothing(
    scanner: ScannerService,
    board: JobBoard,
    library_root: Path,
    probes: list[tuple[str, str]],
) -> None:
    await add_rules(scanner)
    await scanner.scan([str(library_root)])
    assert len(probes) == SCANNED_FILES
    probes.clear()

    again = await scanner.scan([str(library_root)])
    assert probes == []
    assert again["jobs_created"] == 0
    assert again["matched_files"] == 0
    assert again["scanned_files"] == SCANNED_FILES
    assert len(await all_jobs(board)) == len(EXPECTED_JOBS)


async def test_probing_runs_on_the_probe_threads(
    scanner: ScannerService, library_root: Path, probes: list[tuple[str, str]]
) -> None:
    await scanner.scan([str(library_root)])
    threads = {thread for _, thread in probes}
    assert all(name.startswith("transcriptarr-probe") for name in threads)


async def test_changed_file_is_probed_again_and_decided_anew(
    scanner: ScannerService,
    board: JobBoard,
    library_root: Path,
    probes: list[tuple[str, str]],
) -> None:
    await add_rules(scanner)
    await scanner.scan([str(library_root)])
    probes.clear()

    changed = media(library_root / "movies" / "M5" / "M5.mkv", "jpn")
    result = await scanner.scan([str(library_root)])
    assert [name for name, _ in probes] == ["M5.mkv"]
    assert result["jobs_created"] == 1
    job = (await all_jobs(board))[0]
    assert (job.file_path, job.target_lang) == (str(changed), "spa")


async def test_unchanged_file_is_not_submitted_again_after_its_job_ended(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    await scanner.scan([str(library_root / "movies")])
    for job in await all_jobs(board):
        await board.cancel(job.id)
    result = await scanner.scan([str(library_root / "movies")])
    assert result["jobs_created"] == 0


async def test_file_whose_subtitle_appeared_meets_the_next_rule(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    show = library_root / "anime" / "Show"
    await scanner.scan([str(show)])
    subtitle_file(show / "A1.es.srt")
    result = await scanner.scan([str(show)])
    assert result["jobs_created"] == 1
    newest = (await all_jobs(board))[0]
    assert (newest.file_name, newest.target_lang) == ("A1.mkv", "eng")


async def test_job_already_queued_by_hand_is_matched_but_not_duplicated(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    a1 = library_root / "anime" / "Show" / "A1.mkv"
    await board.submit(
        JobCreate(file_path=str(a1), file_name="A1.mkv", target_lang="spa")
    )
    result = await scanner.scan([str(library_root)])
    assert result["matched_files"] == len(EXPECTED_JOBS)
    assert result["jobs_created"] == len(EXPECTED_JOBS) - 1


async def test_jobs_are_submitted_in_batches(
    scanner: ScannerService,
    board: JobBoard,
    library_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await add_rules(scanner)
    batches: list[int] = []
    real_submit_many = board.submit_many

    async def recording(creates: list[Any]) -> list[Job | None]:
        batches.append(len(creates))
        return await real_submit_many(creates)

    monkeypatch.setattr(board, "submit_many", recording)
    monkeypatch.setattr(library, "SUBMIT_BATCH_SIZE", 5)
    await scanner.scan([str(library_root)])
    assert batches == [5, 5, 2]


async def test_folder_with_the_skip_marker_is_skipped_with_everything_below(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    for target in (library_root / "skipped", library_root / "skipped" / "deeper"):
        result = await scanner.scan([str(target)])
        assert result["scanned_files"] == 0
    assert await all_jobs(board) == []


async def test_untagged_audio_is_detected_once_and_cached_by_file_version(
    scanner: ScannerService, detector: FakeDetector, library_root: Path
) -> None:
    await add_rules(scanner)
    await scanner.scan([str(library_root)])
    assert sorted(detector.calls) == [("M3.mp4", 0), ("M7.mkv", 0)]

    await scanner.scan([str(library_root)])
    assert len(detector.calls) == 2

    untagged = library_root / "movies" / "M7" / "M7.mkv"
    os.utime(untagged, ns=(0, 1_000_000_000))
    await scanner.scan([str(library_root)])
    assert detector.calls[2:] == [("M7.mkv", 0)]


async def test_detection_is_skipped_when_no_rule_needs_the_audio_language(
    scanner: ScannerService,
    board: JobBoard,
    detector: FakeDetector,
    library_root: Path,
) -> None:
    await scanner.create_rule({"name": "all", "action": {"target_language": "fra"}})
    await scanner.scan([str(library_root / "movies" / "M3")])
    assert detector.calls == []
    job = (await all_jobs(board))[0]
    assert job.source_lang is None


async def test_detected_language_decides_the_rules(
    make_scanner: ScannerFactory, board: JobBoard, library_root: Path
) -> None:
    scanner = make_scanner(detector=FakeDetector({"M3.mp4": "jpn"}))
    await scanner.start()
    await add_rules(scanner)
    await scanner.scan([str(library_root / "movies" / "M3")])
    job = (await all_jobs(board))[0]
    assert (job.source_lang, job.target_lang) == ("jpn", "spa")


async def test_vanished_file_leaves_the_index(
    scanner: ScannerService, library_root: Path
) -> None:
    doomed = library_root / "movies" / "M1" / "M1.mkv"
    await scanner.scan([str(library_root)])
    assert await scanner.store.index_entry(str(doomed)) is not None
    doomed.unlink()
    await scanner.scan([str(library_root)])
    assert await scanner.store.index_entry(str(doomed)) is None


async def test_scan_without_paths_uses_the_library_paths_setting(
    scanner: ScannerService,
    settings_service: SettingsService,
    library_root: Path,
) -> None:
    movies, anime = library_root / "movies", library_root / "anime"
    await settings_service.update("library_paths", f"{movies},{anime},/nowhere/else")
    result = await scanner.scan()
    assert result["paths_scanned"] == [str(movies), str(anime)]
    assert result["scanned_files"] == 15


async def test_scan_without_paths_and_none_configured_is_refused(
    scanner: ScannerService,
) -> None:
    with pytest.raises(InvalidInput, match=r"^No library paths configured$"):
        await scanner.scan()


async def test_scan_when_no_configured_library_path_exists_is_not_found(
    scanner: ScannerService, settings_service: SettingsService
) -> None:
    await settings_service.update("library_paths", "/nowhere/at/all")
    with pytest.raises(NotFound):
        await scanner.scan()


async def test_scan_of_a_missing_path_is_not_found(
    scanner: ScannerService, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="Path not found"):
        await scanner.scan([str(tmp_path / "missing")])


async def test_scan_of_a_file_or_relative_path_is_refused(
    scanner: ScannerService, library_root: Path
) -> None:
    with pytest.raises(InvalidInput, match="not a directory"):
        await scanner.scan([str(library_root / "movies" / "M1" / "M1.mkv")])
    with pytest.raises(InvalidInput, match="not an absolute path"):
        await scanner.scan(["movies"])


async def test_scan_paths_are_resolved_before_use(
    scanner: ScannerService, library_root: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link"
    link.symlink_to(library_root / "movies")
    result = await scanner.scan([f"{tmp_path}/./link//", str(library_root / "movies")])
    assert result["paths_scanned"] == [str(library_root / "movies")]


async def test_nested_paths_are_scanned_once(
    scanner: ScannerService, library_root: Path
) -> None:
    result = await scanner.scan(
        [str(library_root / "movies" / "M1"), str(library_root)]
    )
    assert result["paths_scanned"] == [str(library_root)]
    assert result["scanned_files"] == SCANNED_FILES


async def test_non_recursive_scan_stays_in_the_folder(
    scanner: ScannerService, library_root: Path
) -> None:
    shutil.copy(library_root / "movies" / "M1" / "M1.mkv", library_root / "top.mkv")
    result = await scanner.scan([str(library_root)], recursive=False)
    assert result["scanned_files"] == 1


async def test_scans_are_counted_and_survive_a_restart(
    make_scanner: ScannerFactory, clock: FakeClock, library_root: Path
) -> None:
    first = make_scanner()
    await first.start()
    await first.scan([str(library_root / "movies")])
    await first.scan([str(library_root / "movies")])
    await first.close()

    second = make_scanner()
    await second.start()
    status = await second.status()
    assert status["total_scans"] == 2
    assert status["last_scan_time"] == "1970-01-12T13:46:40"
    assert clock.now_s == 1_000_000.0


async def test_check_of_one_new_file_creates_its_job_once(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    arrived = media(library_root / "incoming" / "new.mkv", "jpn")
    first = await scanner.check_file(str(arrived))
    second = await scanner.check_file(str(arrived))
    assert (first["jobs_created"], second["jobs_created"]) == (1, 0)
    assert len(await all_jobs(board)) == 1


async def test_check_ignores_other_extensions_and_skipped_folders(
    scanner: ScannerService, board: JobBoard, library_root: Path
) -> None:
    await add_rules(scanner)
    subtitle = subtitle_file(library_root / "incoming" / "new.es.srt")
    hidden = media(library_root / "skipped" / "late.mkv", "jpn")
    assert (await scanner.check_file(str(subtitle)))["scanned_files"] == 0
    assert (await scanner.check_file(str(hidden)))["scanned_files"] == 0
    assert await all_jobs(board) == []


async def test_analyze_returns_the_probe_in_the_spec_shape(
    scanner: ScannerService, library_root: Path
) -> None:
    path = library_root / "anime" / "Show" / "A2.mkv"
    found = await scanner.analyze(str(path))
    assert found["file_path"] == str(path)
    assert found["audio_tracks"][0]["language"] == "jpn"
    assert found["audio_tracks"][0]["codec"] == "aac"
    assert found["audio_tracks"][0]["channels"] == 1
    assert found["embedded_subtitles"] == []
    assert [s["language"] for s in found["external_subtitles"]] == ["spa"]
    assert found["is_video"] is True
    assert found["duration_seconds"] > 0


async def test_analyze_refuses_missing_files_folders_and_non_media(
    scanner: ScannerService, library_root: Path
) -> None:
    with pytest.raises(NotFound, match="File not found"):
        await scanner.analyze(str(library_root / "missing.mkv"))
    with pytest.raises(InvalidInput, match="Path is not a file"):
        await scanner.analyze(str(library_root / "movies"))
    with pytest.raises(MediaError):
        await scanner.analyze(str(library_root / "broken" / "B1.mkv"))
