"""The Whisper engine on real speech with the real bundled models (no Ray).

The speech fixtures are espeak-ng voices (tests/fixtures/make_fixtures.py);
``scripts.json`` holds what they say. Each model loads once for the module.
"""

from __future__ import annotations

import itertools
import json
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import ctranslate2
import jiwer
import numpy as np
import pytest

from transcriptarr.errors import JobCancelled, ModelUnavailable, TranscriptionError
from transcriptarr.media.audio import decode_audio
from transcriptarr.models import TaskKind
from transcriptarr.transcription.cues import format_srt, wrap_lines
from transcriptarr.transcription.engine import TranscriptionResult, WhisperEngine
from transcriptarr.transcription.failures import DeviceFailure
from transcriptarr.transcription.model_cache import ModelKey
from transcriptarr.transcription.presets import ModelChoice, resolve_preset

pytestmark = pytest.mark.integration

MEDIA = Path(__file__).parent.parent / "fixtures" / "media"
FAST = resolve_preset("fast", {}, device="cpu")
SEQUENTIAL = replace(FAST, batch_size=0)
TINY_EN = replace(FAST, model_name="tiny.en")


@dataclass
class Progress:
    """Records the engine's progress reports."""

    reports: list[tuple[float, float | None]] = field(default_factory=list)

    def __call__(self, percent: float, eta_s: float | None) -> None:
        self.reports.append((percent, eta_s))


class ManualClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def spoken_text(name: str) -> str:
    scripts = json.loads((MEDIA / "scripts.json").read_text())
    text: str = scripts[name]["tracks"][0]["text"]
    return text


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def words_of(result: TranscriptionResult) -> str:
    return normalised(" ".join(cue.text for cue in result.cues))


def word_error_rate(reference: str, result: TranscriptionResult) -> float:
    return float(jiwer.wer(normalised(reference), words_of(result)))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhisperEngine]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        models_dir = tmp_path_factory.mktemp("models")
        whisper = WhisperEngine(device="cpu", cpu_threads=2, models_dir=models_dir)
        whisper.load(FAST)
        yield whisper


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    return decode_audio(MEDIA / "english.mkv")


@pytest.fixture(scope="module")
def spanish() -> np.ndarray:
    return decode_audio(MEDIA / "spanish.mkv")


@pytest.fixture(scope="module")
def english_run(
    engine: WhisperEngine, english: np.ndarray
) -> tuple[TranscriptionResult, Progress]:
    progress = Progress()
    result = engine.transcribe(
        english,
        choice=FAST,
        source_lang=None,
        target_lang="eng",
        on_progress=progress,
        should_stop=lambda: False,
    )
    return result, progress


@pytest.fixture(scope="module")
def spanish_result(engine: WhisperEngine, spanish: np.ndarray) -> TranscriptionResult:
    return engine.transcribe(spanish, choice=FAST, source_lang=None, target_lang="spa")


def test_english_speech_becomes_english_cues_with_few_word_errors(
    english_run: tuple[TranscriptionResult, Progress],
) -> None:
    result, _ = english_run

    assert word_error_rate(spoken_text("english.mkv"), result) < 0.15
    assert result.task is TaskKind.TRANSCRIBE
    assert result.language == "eng"
    assert result.detected_language == "eng"
    assert result.segments_count == len(result.cues) > 0
    assert result.duration_s == pytest.approx(23.0, abs=0.5)


def test_english_cues_read_as_subtitles(
    english_run: tuple[TranscriptionResult, Progress],
) -> None:
    result, _ = english_run
    cues = result.cues

    assert len(cues) >= 4
    for cue in cues:
        assert 0 < cue.end_s - cue.start_s <= 7.0
        assert all(len(line) <= 42 for line in wrap_lines(cue.text))
        assert cue.end_s <= result.duration_s
    for before, after in itertools.pairwise(cues):
        assert before.end_s <= after.start_s
    assert format_srt(cues).startswith("1\n00:00:0")


def test_progress_rises_to_one_hundred_percent_with_an_eta(
    english_run: tuple[TranscriptionResult, Progress],
) -> None:
    _, progress = english_run
    percents = [percent for percent, _ in progress.reports]

    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert all(eta_s is not None and eta_s >= 0 for _, eta_s in progress.reports)


def test_spanish_speech_without_a_source_language_is_detected_as_spanish(
    spanish_result: TranscriptionResult,
) -> None:
    assert spanish_result.detected_language == "spa"
    assert spanish_result.language_probability is not None
    assert spanish_result.language_probability > 0.5
    assert spanish_result.task is TaskKind.TRANSCRIBE
    assert word_error_rate(spoken_text("spanish.mkv"), spanish_result) < 0.25
    assert {"ciudad", "hospital", "niños", "parque"} <= set(
        words_of(spanish_result).split()
    )


def test_spanish_speech_with_an_english_target_is_translated_into_english(
    engine: WhisperEngine, spanish: np.ndarray
) -> None:
    result = engine.transcribe(
        spanish, choice=FAST, source_lang="spa", target_lang="eng"
    )

    words = set(words_of(result).split())
    assert result.task is TaskKind.TRANSLATE
    assert result.language == "spa"
    assert result.detected_language is None
    assert {"the", "children", "park", "fish", "train"} <= words
    assert not {"ciudad", "niños", "parque", "tren"} & words


def test_a_french_target_for_english_speech_fails_before_transcribing(
    engine: WhisperEngine, english: np.ndarray
) -> None:
    progress = Progress()

    with pytest.raises(TranscriptionError) as caught:
        engine.transcribe(
            english,
            choice=FAST,
            source_lang=None,
            target_lang="fra",
            on_progress=progress,
        )

    assert "Translation to French is not available yet" in caught.value.detail
    assert "English" in caught.value.detail
    assert progress.reports == []


def test_silence_gives_no_cues_and_no_error(engine: WhisperEngine) -> None:
    silence = decode_audio(MEDIA / "silence.mkv")

    result = engine.transcribe(silence, choice=FAST, target_lang="eng")

    assert result.cues == []
    assert result.segments_count == 0
    assert result.detected_language is None


def test_with_vad_off_speech_longer_than_one_window_is_transcribed_in_batches(
    engine: WhisperEngine, english: np.ndarray
) -> None:
    twice = np.concatenate([english, english])
    choice = replace(FAST, vad_filter=False)

    result = engine.transcribe(
        twice, choice=choice, source_lang="eng", target_lang="eng"
    )

    spoken = spoken_text("english.mkv")
    assert word_error_rate(f"{spoken} {spoken}", result) < 0.15
    assert result.cues[-1].end_s > 40


def test_a_job_cancelled_before_it_starts_raises_job_cancelled(
    engine: WhisperEngine, english: np.ndarray
) -> None:
    with pytest.raises(JobCancelled):
        engine.transcribe(
            english, choice=FAST, target_lang="eng", should_stop=lambda: True
        )


def test_a_job_cancelled_midway_stops_after_the_current_segment(
    engine: WhisperEngine, english: np.ndarray
) -> None:
    progress = Progress()

    with pytest.raises(JobCancelled):
        engine.transcribe(
            english,
            choice=SEQUENTIAL,
            source_lang="eng",
            target_lang="eng",
            on_progress=progress,
            should_stop=lambda: bool(progress.reports),
        )

    assert len(progress.reports) == 1
    assert progress.reports[0][0] < 50


def test_the_english_only_bundled_model_refuses_other_languages(
    engine: WhisperEngine, spanish: np.ndarray
) -> None:
    with pytest.raises(TranscriptionError, match="English only"):
        engine.transcribe(spanish, choice=TINY_EN, source_lang="spa", target_lang="spa")


def test_idle_models_are_unloaded_and_busy_recent_ones_kept(tmp_path: Path) -> None:
    clock = ManualClock()
    whisper = WhisperEngine(cpu_threads=1, models_dir=tmp_path, clock=clock)
    whisper.load(TINY_EN)
    key = ModelKey("tiny.en", "int8", "cpu", 0)
    assert whisper.loaded_models() == [key]

    clock.now_s += 100
    kept = whisper.unload_idle(max_idle_s=300)
    freed = whisper.unload_idle(max_idle_s=300, now=clock.now_s + 250)

    assert kept == []
    assert freed == [key]
    assert whisper.loaded_models() == []


def test_an_unknown_model_is_unavailable_without_any_download(
    engine: WhisperEngine, english: np.ndarray
) -> None:
    choice = ModelChoice("gigantic-v9", "int8", 1, 0, True)

    with pytest.raises(ModelUnavailable, match="Unknown Whisper model"):
        engine.transcribe(english, choice=choice, target_lang="eng")


@pytest.mark.skipif(
    ctranslate2.get_cuda_device_count() > 0, reason="a working GPU is present"
)
def test_a_gpu_worker_without_a_working_gpu_fails_with_a_device_failure(
    tmp_path: Path,
) -> None:
    whisper = WhisperEngine(device="cuda", models_dir=tmp_path)

    with pytest.raises(DeviceFailure) as caught:
        whisper.load(
            replace(resolve_preset("fast", {}, device="cuda"), model_name="tiny.en")
        )

    assert "CUDA" in caught.value.detail
    assert isinstance(pickle.loads(pickle.dumps(caught.value)), DeviceFailure)
    assert whisper.loaded_models() == []
