"""A synthetic media library for the scanner's tests, and fakes it needs.

The files are real Matroska (and QuickTime) made with PyAV through the
fixture script's own muxing helpers: one second of tone, two frames of video,
and language tags written in every form libraries carry (639-1 ``ja``,
639-2/T ``jpn``, 639-2/B ``ger``), forced and picture subtitle tracks, and
subtitle files beside them. The untagged file is the real English speech
fixture, so the integration test can detect its language with Whisper.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tests.clock import FakeClock
from tests.fixtures.make_fixtures import (
    SPANISH_CUES,
    AudioSpec,
    TextSubtitleSpec,
    write_container,
)
from transcriptarr.models import Job
from transcriptarr.store.scanner import Detection

FIXTURES = Path(__file__).parent / "fixtures" / "media"
SAMPLE_RATE_HZ = 16000
_TONE = (
    np.sin(np.arange(SAMPLE_RATE_HZ) * 2 * np.pi * 440 / SAMPLE_RATE_HZ) * 3000
).astype(np.int16)

SKIP_MARKER = ".transcriptarr-skip"


def media(
    path: Path,
    *languages: str | None,
    text_subtitle: tuple[str, bool] | None = None,
    picture_subtitle: str | None = None,
) -> Path:
    """Write a small media file with one audio track per language tag.

    Args:
        path: Where; the extension picks the container.
        languages: The tag of each audio track (None: untagged).
        text_subtitle: ``(language, forced)`` of an embedded SubRip track.
        picture_subtitle: Language of an embedded DVD (picture) track.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = [AudioSpec(_TONE, tag, index == 0) for index, tag in enumerate(languages)]
    texts: tuple[TextSubtitleSpec, ...] = ()
    if text_subtitle is not None:
        language, forced = text_subtitle
        texts = (TextSubtitleSpec("subrip", language, SPANISH_CUES, forced=forced),)
    write_container(
        path, audio, text_subtitles=texts, dvd_subtitle_language=picture_subtitle
    )
    return path


def subtitle_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nHola\n\n")
    return path


def fixture_copy(name: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / name, path)
    return path


def build_library(root: Path) -> Path:
    """The library the careful-person tests list jobs for (see RULES)."""
    anime = root / "anime" / "Show"
    media(anime / "A1.mkv", "ja")
    media(anime / "A2.mkv", "jpn")
    subtitle_file(anime / "A2.es.srt")
    media(anime / "A3.mkv", "jpn", text_subtitle=("spa", True))
    media(anime / "A4.mkv", "jpn", picture_subtitle="spa")
    media(anime / "A5.mkv", "jpn", text_subtitle=("spa", False))
    media(anime / "A6.mkv", "jpn")
    subtitle_file(anime / "A6.spa.forced.srt")
    media(anime / "A7.mkv", "jpn")
    subtitle_file(anime / "A7.spa.srt")
    media(anime / "A8.mov", "jpn")

    movies = root / "movies"
    media(movies / "M1" / "M1.mkv", "eng")
    media(movies / "M2" / "M2.mkv", "en")
    subtitle_file(movies / "M2" / "M2.en.srt")
    fixture_copy("english_untagged.mp4", movies / "M3" / "M3.mp4")
    media(movies / "M4" / "M4.mkv", "ger")
    media(movies / "M5" / "M5.mkv", "fre", text_subtitle=("eng", False))
    media(movies / "M6" / "M6.mkv", "eng", "spa")
    media(movies / "M7" / "M7.mkv", "und")
    subtitle_file(movies / "M7" / "M7.en.srt")

    media(root / "skipped" / "S1.mkv", "jpn")
    (root / "skipped" / SKIP_MARKER).touch()
    media(root / "skipped" / "deeper" / "S2.mkv", "jpn")
    fixture_copy("not_media.mkv", root / "broken" / "B1.mkv")
    fixture_copy("no_audio.mkv", root / "broken" / "B2.mkv")
    subtitle_file(root / "broken" / "B3.en.srt")
    return root


# The rules of the careful-person test, as POST bodies.
RULES: list[dict[str, object]] = [
    {
        "name": "Japanese anime without Spanish subs",
        "priority": 10,
        "conditions": {
            "audio_language_is": "jpn",
            "missing_embedded_subtitle_lang": "spa",
            "missing_external_subtitle_lang": "es",
            "file_extension": ".mkv,.mp4",
        },
        "action": {
            "action_type": "transcribe",
            "target_language": "spa",
            "quality_preset": "fast",
            "job_priority": 5,
        },
    },
    {
        "name": "English for everything not in English",
        "priority": 5,
        "conditions": {
            "audio_language_not": "en",
            "missing_embedded_subtitle_lang": "eng",
            "missing_external_subtitle_lang": "eng",
        },
        "action": {
            "action_type": "translate",
            "target_language": "eng",
            "quality_preset": "balanced",
            "job_priority": 2,
        },
    },
    {
        "name": "English audio without English subs",
        "priority": 1,
        "conditions": {
            "audio_language_is": "en",
            "missing_embedded_subtitle_lang": "eng",
            "missing_external_subtitle_lang": "eng",
        },
        "action": {"target_language": "en", "quality_preset": "best"},
    },
]

# (relative path, target, source, task, preset, priority) a careful person
# lists for the library above and RULES.
EXPECTED_JOBS = {
    ("anime/Show/A1.mkv", "spa", "jpn", "transcribe", "fast", 5),
    ("anime/Show/A2.mkv", "eng", "jpn", "translate", "balanced", 2),
    ("anime/Show/A3.mkv", "spa", "jpn", "transcribe", "fast", 5),
    ("anime/Show/A4.mkv", "spa", "jpn", "transcribe", "fast", 5),
    ("anime/Show/A5.mkv", "eng", "jpn", "translate", "balanced", 2),
    ("anime/Show/A6.mkv", "spa", "jpn", "transcribe", "fast", 5),
    ("anime/Show/A7.mkv", "eng", "jpn", "translate", "balanced", 2),
    ("anime/Show/A8.mov", "eng", "jpn", "translate", "balanced", 2),
    ("movies/M1/M1.mkv", "eng", "eng", "transcribe", "best", 0),
    ("movies/M3/M3.mp4", "eng", "eng", "transcribe", "best", 0),
    ("movies/M4/M4.mkv", "eng", "deu", "translate", "balanced", 2),
    ("movies/M6/M6.mkv", "eng", "eng", "transcribe", "best", 0),
}
# Media files a scan sees: everything but the skipped folder's two.
SCANNED_FILES = 17


class FakeDetector:
    """Language detection that answers from a table and counts its calls."""

    def __init__(self, answers: dict[str, str | None] | None = None) -> None:
        self.answers = answers or {}
        self.default: str | None = "eng"
        self.calls: list[tuple[str, int]] = []
        self.releases = 0
        self._lock = threading.Lock()

    def detect(
        self,
        path: Path,
        track_index: int,
        *,
        duration_s: float,
        offset_s: float,
        length_s: float,
    ) -> Detection:
        with self._lock:
            self.calls.append((path.name, track_index))
        language = self.answers.get(path.name, self.default)
        return Detection(track_index, language, 0.9 if language else None)

    def release(self) -> None:
        self.releases += 1


def job_rows(jobs: Sequence[Job], root: Path) -> set[tuple[object, ...]]:
    """Jobs as EXPECTED_JOBS rows, paths relative to ``root``."""
    rows: set[tuple[object, ...]] = set()
    for job in jobs:
        data = job.model_dump(mode="json")
        rows.add(
            (
                str(Path(data["file_path"]).relative_to(root)),
                data["target_lang"],
                data["source_lang"],
                data["transcribe_or_translate"],
                data["quality_preset"],
                data["priority"],
            )
        )
    return rows


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class ManualTime:
    """A clock and an asyncio sleep that only move when the test says so."""

    def __init__(self, start: str = "2025-01-12T10:00:00") -> None:
        self.clock = FakeClock(epoch(start))
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.longest_sleep_s = 0.0

    async def sleep(self, seconds: float) -> None:
        self.longest_sleep_s = max(self.longest_sleep_s, seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.clock.now_s + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its due time in order."""
        target_s = self.clock.now_s + seconds
        while True:
            await settle()
            due = [s for s in self._sleepers if s[0] <= target_s]
            if not due:
                break
            wake_s, future = min(due, key=lambda s: s[0])
            self._sleepers.remove((wake_s, future))
            self.clock.now_s = max(self.clock.now_s, wake_s)
            if not future.done():
                future.set_result(None)
        self.clock.now_s = target_s
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)
