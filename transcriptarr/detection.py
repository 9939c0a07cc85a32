"""Naming the spoken language of an untagged audio track from a sample.

The scanner asks only when a rule depends on the audio language and the
container does not say it. The sample starts
``transcription_language_sample_offset_s`` in (past an intro) and lasts
``transcription_language_sample_length_s``; Whisper's guess below
:data:`MIN_LANGUAGE_PROBABILITY` leaves the track unknown.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any, Protocol

from faster_whisper.vad import VadOptions, get_speech_timestamps

from transcriptarr.errors import ModelUnavailable, TranscriptionError
from transcriptarr.media import languages
from transcriptarr.media.audio import decode_audio
from transcriptarr.store.scanner import Detection
from transcriptarr.transcription import catalog

logger = logging.getLogger(__name__)

WHISPER_WINDOW_S = 30.0
# Below this, Whisper's guess is no better than leaving the track unknown.
MIN_LANGUAGE_PROBABILITY = 0.5


class LanguageDetector(Protocol):
    """Names the spoken language of one audio track (blocking)."""

    def detect(
        self,
        path: Path,
        track_index: int,
        *,
        duration_s: float,
        offset_s: float,
        length_s: float,
    ) -> Detection:
        """Detect from ``length_s`` of audio starting ``offset_s`` in.

        Raises:
            TranscriptarrError: The audio cannot be decoded or the model
                cannot be loaded.
        """

    def release(self) -> None:
        """Free the model until the next detection."""


def sample_start_s(duration_s: float, offset_s: float, length_s: float) -> float:
    """Where the sample starts: ``offset_s`` in, or as late as a short file
    allows so the sample still holds ``length_s`` of audio."""
    return max(min(offset_s, duration_s - length_s), 0.0)


class WhisperLanguageDetector:
    """Language detection with faster-whisper on the bundled ``base`` model.

    The model is loaded on first use, on CPU with int8 weights, and kept until
    :meth:`release`; detections are serialised (one model, one caller).
    """

    def __init__(
        self, models_dir: Path, *, model_name: str = "base", cpu_threads: int = 0
    ) -> None:
        self._models_dir = models_dir
        self._model_name = model_name
        self._cpu_threads = cpu_threads
        self._model: Any = None
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
        start_s = sample_start_s(duration_s, offset_s, length_s)
        samples = decode_audio(path, track_index, start_s=start_s, duration_s=length_s)
        if samples.size == 0 or not get_speech_timestamps(samples, VadOptions()):
            # No speech: Whisper would still name a language, with nothing to
            # base it on.
            return Detection(track_index, None, None)
        windows = max(1, math.ceil(length_s / WHISPER_WINDOW_S))
        with self._lock:
            model = self._load()
            try:
                code, probability, _ = model.detect_language(
                    audio=samples, vad_filter=True, language_detection_segments=windows
                )
            except Exception as exc:
                raise TranscriptionError(
                    f"Language detection failed on {path}: {exc}"
                ) from exc
        language = languages.from_whisper(code)
        if probability < MIN_LANGUAGE_PROBABILITY:
            language = None
        logger.info(
            "detected language %s (p=%.2f) of %s track %d",
            language or "unknown",
            probability,
            path,
            track_index,
        )
        return Detection(track_index, language, float(probability))

    def release(self) -> None:
        with self._lock:
            self._model = None

    def _load(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel

            folder = catalog.resolve_model(self._model_name, self._models_dir)
            try:
                self._model = WhisperModel(
                    str(folder),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self._cpu_threads,
                    local_files_only=True,
                )
            except Exception as exc:
                raise ModelUnavailable(
                    f"Cannot load model {self._model_name} for language "
                    f"detection: {exc}"
                ) from exc
        return self._model
