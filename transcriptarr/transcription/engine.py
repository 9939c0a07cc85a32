"""The transcription engine: audio in, subtitle cues out, on faster-whisper.

One ``WhisperEngine`` lives in each worker process. It keeps the models it has
loaded in a :mod:`~transcriptarr.transcription.model_cache` and settles a job's
language and task (:mod:`~transcriptarr.transcription.language`) before any
decoding starts; this module decodes, follows progress and builds the cues.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline
from faster_whisper.vad import VadOptions, get_speech_timestamps

from transcriptarr.errors import JobCancelled, TranscriptarrError, TranscriptionError
from transcriptarr.media import languages
from transcriptarr.models import TaskKind
from transcriptarr.transcription.cues import Cue, Segment, build_cues, from_whisper
from transcriptarr.transcription.failures import translate_error
from transcriptarr.transcription.language import (
    LanguagePlan,
    given_language,
    language_sample,
    plan_task,
)
from transcriptarr.transcription.model_cache import LoadedModel, ModelCache, ModelKey
from transcriptarr.transcription.presets import Device, ModelChoice

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_WINDOW_S = 30.0

Audio = npt.NDArray[np.float32]
ProgressCallback = Callable[[float, float | None], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class TranscriptionResult:
    """The cues of one job and what the engine learnt on the way.

    ``language`` is the audio's language (639-2/T), given or detected;
    ``detected_language`` and ``language_probability`` are set only when it
    was detected. A result without speech has no cues and no language.
    """

    cues: list[Cue]
    language: str | None
    detected_language: str | None
    language_probability: float | None
    duration_s: float
    task: TaskKind
    model_name: str
    device: str

    @property
    def segments_count(self) -> int:
        return len(self.cues)


class TranscriptionEngine(Protocol):
    """What a worker needs from a speech-to-text engine."""

    def load(self, choice: ModelChoice) -> None:
        """Load the model of ``choice`` now, ahead of :meth:`transcribe`."""

    def transcribe(
        self,
        audio: Audio,
        *,
        choice: ModelChoice,
        source_lang: str | None = None,
        target_lang: str,
        on_progress: ProgressCallback = ...,
        should_stop: StopCheck = ...,
    ) -> TranscriptionResult:
        """Turn 16 kHz mono audio into cues in ``target_lang``."""

    def loaded_models(self) -> list[ModelKey]:
        """The models held in memory."""

    def unload_idle(
        self, max_idle_s: float, now: float | None = None
    ) -> list[ModelKey]:
        """Free the models unused for ``max_idle_s``; return what was freed."""


def _ignore_progress(percent: float, eta_s: float | None) -> None:
    del percent, eta_s


def _never() -> bool:
    return False


class WhisperEngine(TranscriptionEngine):
    """faster-whisper behind :class:`TranscriptionEngine`.

    Args:
        device: ``cpu`` or ``cuda``.
        device_index: the GPU to use on ``cuda``.
        cpu_threads: threads CTranslate2 uses on CPU (0: its default).
        models_dir: the models cache :func:`catalog.resolve_model` uses.
        clock: monotonic seconds, for idle unloading.
    """

    def __init__(
        self,
        *,
        device: Device = "cpu",
        device_index: int = 0,
        cpu_threads: int = 0,
        models_dir: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device: Device = device
        self.device_index = device_index
        self.cpu_threads = cpu_threads
        self.models_dir = models_dir
        self._cache = ModelCache(
            device=device,
            device_index=device_index,
            cpu_threads=cpu_threads,
            models_dir=models_dir,
            clock=clock,
        )

    @property
    def device_name(self) -> str:
        """``cpu`` or ``cuda:<index>``, as jobs report it."""
        return "cpu" if self.device == "cpu" else f"cuda:{self.device_index}"

    def load(self, choice: ModelChoice) -> None:
        """Load the model of ``choice`` unless it is loaded already.

        Raises:
            ModelUnavailable: the model's files cannot be found or loaded.
            DeviceFailure: the GPU failed while loading.
        """
        with self._cache.borrow(choice):
            pass

    def loaded_models(self) -> list[ModelKey]:
        return self._cache.keys()

    def unload_idle(
        self, max_idle_s: float, now: float | None = None
    ) -> list[ModelKey]:
        """See :meth:`ModelCache.unload_idle`."""
        return self._cache.unload_idle(max_idle_s, now)

    def transcribe(
        self,
        audio: Audio,
        *,
        choice: ModelChoice,
        source_lang: str | None = None,
        target_lang: str,
        on_progress: ProgressCallback = _ignore_progress,
        should_stop: StopCheck = _never,
    ) -> TranscriptionResult:
        """Transcribe (or translate into English) 16 kHz mono float32 audio.

        Args:
            audio: the samples.
            choice: model and decoding options.
            source_lang: the audio's language (639-2/T); None detects it.
            target_lang: the language of the cues (639-2/T).
            on_progress: called after each segment with percent and ETA seconds.
            should_stop: polled between segments; True cancels the job.

        Returns:
            The cues and what was learnt about the audio.

        Raises:
            TranscriptionError: the target cannot be reached from this audio
                (translation into a language other than English), or decoding
                failed.
            DeviceFailure: the GPU failed; the worker should restart.
            ModelUnavailable: the model cannot be loaded.
            JobCancelled: ``should_stop`` answered True.
        """
        samples = _as_samples(audio)
        target = languages.normalise(target_lang, field="target_lang")
        _stop_if_asked(should_stop)
        with self._cache.borrow(choice) as loaded:
            job = _Job(self, loaded, choice, samples, on_progress, should_stop)
            return job.run(source_lang, target)


class _Job:
    """One transcription: plan the language, decode, follow progress, build cues."""

    def __init__(
        self,
        engine: WhisperEngine,
        loaded: LoadedModel,
        choice: ModelChoice,
        samples: Audio,
        on_progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> None:
        self.engine = engine
        self.loaded = loaded
        self.model = loaded.model
        self.choice = choice
        self.samples = samples
        self.duration_s = len(samples) / SAMPLE_RATE
        self.on_progress = on_progress
        self.should_stop = should_stop

    def run(self, source_lang: str | None, target: str) -> TranscriptionResult:
        given = given_language(
            source_lang,
            multilingual=self.model.model.is_multilingual,
            model_name=self.choice.model_name,
        )
        plan = plan_task(given, target) if given is not None else None

        speech = self._speech_chunks()
        if speech is not None and not speech:
            logger.info("No speech in %.1f s of audio", self.duration_s)
            return self._result([], plan)

        if plan is None:
            plan = self._detect(speech, target)
        _stop_if_asked(self.should_stop)
        segments = self._follow(self._decode(plan))
        return self._result(build_cues(segments), plan)

    def _speech_chunks(self) -> list[dict[str, int]] | None:
        """Where the speech is (VAD), or None when VAD is off."""
        if not self.choice.vad_filter:
            return None
        chunks: list[dict[str, int]] = get_speech_timestamps(self.samples, VadOptions())
        return chunks

    def _detect(self, speech: list[dict[str, int]] | None, target: str) -> LanguagePlan:
        sample = language_sample(
            self.samples, speech, self.choice, sample_rate=SAMPLE_RATE
        )
        windows = max(1, math.ceil(self.choice.language_sample_length_s / _WINDOW_S))
        try:
            code, probability, _ = self.model.detect_language(
                audio=sample, language_detection_segments=windows
            )
        except Exception as exc:
            raise self._failure(exc, "Language detection failed") from exc
        language = languages.from_whisper(code)
        if language is None:
            raise TranscriptionError(f"Whisper detected an unknown language {code!r}")
        logger.info("Detected language %s (p=%.2f)", language, probability)
        plan = plan_task(language, target)
        return LanguagePlan(
            plan.language, plan.whisper_code, plan.task, True, float(probability)
        )

    def _decode(self, plan: LanguagePlan) -> Iterator[Any]:
        options: dict[str, Any] = {
            "language": plan.whisper_code,
            "task": plan.task.value,
            "beam_size": self.choice.beam_size,
            "word_timestamps": True,
            "vad_filter": self.choice.vad_filter,
        }
        try:
            if self.choice.batch_size > 0:
                if self.loaded.batched is None:
                    self.loaded.batched = BatchedInferencePipeline(self.model)
                options["batch_size"] = self.choice.batch_size
                if not self.choice.vad_filter:
                    # Without VAD the batched pipeline needs the windows named.
                    options["clip_timestamps"] = _windows(self.duration_s)
                segments, _ = self.loaded.batched.transcribe(self.samples, **options)
            else:
                segments, _ = self.model.transcribe(self.samples, **options)
        except Exception as exc:
            raise self._failure(exc, "Transcription failed") from exc
        iterator: Iterator[Any] = segments
        return iterator

    def _follow(self, segments: Iterator[Any]) -> list[Segment]:
        """Pull segments one by one, reporting progress and polling for cancel."""
        started_s = time.perf_counter()
        collected: list[Segment] = []
        try:
            while True:
                _stop_if_asked(self.should_stop)
                try:
                    raw = next(segments)
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._failure(exc, "Transcription failed") from exc
                collected.append(from_whisper(raw))
                self._report(collected[-1].end_s, time.perf_counter() - started_s)
        finally:
            close = getattr(segments, "close", None)
            if close is not None:
                close()
        self.on_progress(100.0, 0.0)
        return collected

    def _failure(self, exc: Exception, context: str) -> TranscriptarrError:
        return translate_error(exc, context, self.engine.device, TranscriptionError)

    def _report(self, reached_s: float, elapsed_s: float) -> None:
        fraction = (
            min(max(reached_s / self.duration_s, 0.0), 1.0) if self.duration_s else 1.0
        )
        eta_s = elapsed_s * (1 - fraction) / fraction if fraction > 0 else None
        self.on_progress(fraction * 100, eta_s)

    def _result(
        self, cues: list[Cue], plan: LanguagePlan | None
    ) -> TranscriptionResult:
        return TranscriptionResult(
            cues=cues,
            language=plan.language if plan else None,
            detected_language=plan.language if plan and plan.detected else None,
            language_probability=plan.probability if plan else None,
            duration_s=self.duration_s,
            task=plan.task if plan else TaskKind.TRANSCRIBE,
            model_name=self.choice.model_name,
            device=self.engine.device_name,
        )


def _windows(duration_s: float) -> list[dict[str, float]]:
    """Back-to-back 30 s windows covering the audio, in seconds."""
    starts_s = np.arange(0.0, max(duration_s, 0.0), _WINDOW_S)
    return [
        {"start": float(start_s), "end": float(min(start_s + _WINDOW_S, duration_s))}
        for start_s in starts_s
    ]


def _as_samples(audio: Audio) -> Audio:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise TranscriptionError(
            f"Expected mono audio (one dimension), got shape {samples.shape}"
        )
    return samples


def _stop_if_asked(should_stop: StopCheck) -> None:
    if should_stop():
        raise JobCancelled("The job was cancelled")
