"""The transcription engine: audio in, subtitle cues out, on faster-whisper.

One ``WhisperEngine`` lives in each worker process. It keeps the models it has
loaded, keyed by model, compute type and device, until they sit idle too long.
A job decides its language and task before any decoding starts, so a request
Whisper cannot serve fails in seconds rather than after an hour of work.
"""

from __future__ import annotations

import gc
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from transcriptarr.errors import (
    JobCancelled,
    ModelUnavailable,
    TranscriptarrError,
    TranscriptionError,
)
from transcriptarr.media import languages
from transcriptarr.models import TaskKind
from transcriptarr.transcription import catalog
from transcriptarr.transcription.cues import Cue, Segment, build_cues, from_whisper
from transcriptarr.transcription.presets import Device, ModelChoice

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
ENGLISH = "eng"
_WINDOW_S = 30.0
_DEVICE_ERROR = re.compile(r"cuda|cublas|cudnn|nccl", re.IGNORECASE)
_OUT_OF_MEMORY = re.compile(r"out of memory", re.IGNORECASE)

Audio = npt.NDArray[np.float32]
ProgressCallback = Callable[[float, float | None], None]
StopCheck = Callable[[], bool]


class DeviceFailure(TranscriptionError):
    """The GPU failed (CUDA error, out of memory); the worker should exit.

    A CUDA context that has seen such an error is not trustworthy for the rest
    of the process, so the job goes back to the queue and the worker restarts.
    """


@dataclass(frozen=True, slots=True, order=True)
class ModelKey:
    """What identifies a loaded model."""

    model_name: str
    compute_type: str
    device: str
    device_index: int


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


@dataclass(frozen=True, slots=True)
class _Plan:
    """The language of the audio and the task that yields the target."""

    language: str
    whisper_code: str
    task: TaskKind
    detected: bool = False
    probability: float | None = None


@dataclass(slots=True)
class _Loaded:
    model: Any
    last_used_s: float
    batched: Any | None = None
    in_use: int = field(default=0)


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
        self._clock = clock
        self._models: dict[ModelKey, _Loaded] = {}
        self._lock = threading.Lock()

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
        with self._borrow(choice):
            pass

    def loaded_models(self) -> list[ModelKey]:
        with self._lock:
            return sorted(self._models)

    def unload_idle(
        self, max_idle_s: float, now: float | None = None
    ) -> list[ModelKey]:
        """Drop the models not used for ``max_idle_s`` seconds.

        Args:
            max_idle_s: the longest a model may sit unused.
            now: the clock's current reading (default: read it).

        Returns:
            The keys of the models that were unloaded.
        """
        now_s = self._clock() if now is None else now
        with self._lock:
            idle = [
                key
                for key, loaded in self._models.items()
                if loaded.in_use == 0 and now_s - loaded.last_used_s >= max_idle_s
            ]
            for key in idle:
                del self._models[key]
        if idle:
            gc.collect()
            logger.info(
                "Unloaded idle models: %s", ", ".join(k.model_name for k in idle)
            )
        return idle

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
        with self._borrow(choice) as loaded:
            job = _Job(self, loaded, choice, samples, on_progress, should_stop)
            return job.run(source_lang, target)

    @contextmanager
    def _borrow(self, choice: ModelChoice) -> Iterator[_Loaded]:
        """The loaded model of ``choice``, safe from unloading while in use."""
        key = ModelKey(
            choice.model_name, choice.compute_type, self.device, self.device_index
        )
        with self._lock:
            loaded = self._models.get(key)
        if loaded is None:
            loaded = self._load(key)
        with self._lock:
            loaded.in_use += 1
        try:
            yield loaded
        except DeviceFailure:
            self._drop_all()
            raise
        finally:
            with self._lock:
                loaded.in_use -= 1
                loaded.last_used_s = self._clock()

    def _load(self, key: ModelKey) -> _Loaded:
        path = catalog.resolve_model(key.model_name, self.models_dir)
        started_s = time.perf_counter()
        try:
            model = WhisperModel(
                str(path),
                device=key.device,
                device_index=key.device_index,
                compute_type=key.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=True,
            )
        except Exception as exc:
            context = f"Cannot load model {key.model_name} ({key.compute_type})"
            raise _translate(exc, context, self.device, ModelUnavailable) from exc
        logger.info(
            "Loaded model %s (%s) on %s in %.1f s",
            key.model_name,
            key.compute_type,
            self.device_name,
            time.perf_counter() - started_s,
        )
        with self._lock:
            # Another thread may have loaded it meanwhile; keep one copy.
            return self._models.setdefault(key, _Loaded(model, self._clock()))

    def _drop_all(self) -> None:
        with self._lock:
            self._models.clear()
        gc.collect()


class _Job:
    """One transcription: plan the language, decode, follow progress, build cues."""

    def __init__(
        self,
        engine: WhisperEngine,
        loaded: _Loaded,
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
        given = self._given_language(source_lang)
        plan = _plan(given, target) if given is not None else None

        speech = self._speech_chunks()
        if speech is not None and not speech:
            logger.info("No speech in %.1f s of audio", self.duration_s)
            return self._result([], plan)

        if plan is None:
            plan = self._detect(speech, target)
        _stop_if_asked(self.should_stop)
        segments = self._follow(self._decode(plan))
        return self._result(build_cues(segments), plan)

    def _given_language(self, source_lang: str | None) -> str | None:
        """The stated audio language, or None to detect it."""
        if not self.model.model.is_multilingual:
            if (
                source_lang is not None
                and languages.to_iso639_2(source_lang) != ENGLISH
            ):
                raise TranscriptionError(
                    f"Model {self.choice.model_name} understands English only; "
                    f"choose a multilingual model for {source_lang} audio"
                )
            return ENGLISH
        if source_lang is None:
            return None
        if languages.to_whisper(source_lang) is None:
            logger.warning(
                "Whisper lacks language %r; detecting it instead", source_lang
            )
            return None
        return languages.normalise(source_lang, field="source_lang")

    def _speech_chunks(self) -> list[dict[str, int]] | None:
        """Where the speech is (VAD), or None when VAD is off."""
        if not self.choice.vad_filter:
            return None
        chunks: list[dict[str, int]] = get_speech_timestamps(self.samples, VadOptions())
        return chunks

    def _detect(self, speech: list[dict[str, int]] | None, target: str) -> _Plan:
        sample = _language_sample(self.samples, speech, self.choice)
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
        plan = _plan(language, target)
        return _Plan(
            plan.language, plan.whisper_code, plan.task, True, float(probability)
        )

    def _decode(self, plan: _Plan) -> Iterator[Any]:
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
        return _translate(exc, context, self.engine.device, TranscriptionError)

    def _report(self, reached_s: float, elapsed_s: float) -> None:
        fraction = (
            min(max(reached_s / self.duration_s, 0.0), 1.0) if self.duration_s else 1.0
        )
        eta_s = elapsed_s * (1 - fraction) / fraction if fraction > 0 else None
        self.on_progress(fraction * 100, eta_s)

    def _result(self, cues: list[Cue], plan: _Plan | None) -> TranscriptionResult:
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


def _plan(language: str, target: str) -> _Plan:
    """Choose the task that turns ``language`` audio into ``target`` cues.

    Raises:
        TranscriptionError: Whisper translates only into English.
    """
    whisper_code = languages.to_whisper(language)
    if whisper_code is None:
        raise TranscriptionError(f"Whisper cannot transcribe {_name(language)}")
    if language == target:
        return _Plan(language, whisper_code, TaskKind.TRANSCRIBE)
    if target == ENGLISH:
        return _Plan(language, whisper_code, TaskKind.TRANSLATE)
    choices = " or ".join(dict.fromkeys([language, ENGLISH]))
    raise TranscriptionError(
        f"Translation to {_name(target)} is not available yet: the audio is in "
        f"{_name(language)} and Whisper translates only into English; "
        f"ask for {choices} subtitles"
    )


def _translate(
    exc: Exception,
    context: str,
    device: Device,
    fallback: type[TranscriptarrError],
) -> TranscriptarrError:
    """Turn a CTranslate2 / faster-whisper error into one of our tree."""
    text = str(exc)
    if device == "cuda" and (_DEVICE_ERROR.search(text) or _OUT_OF_MEMORY.search(text)):
        return DeviceFailure(f"{context}: GPU failure: {text}")
    return fallback(f"{context}: {text}")


def _name(code: str) -> str:
    name = languages.english_name(code)
    return name.title() if name else code


def _language_sample(
    samples: Audio, speech: list[dict[str, int]] | None, choice: ModelChoice
) -> Audio:
    """The stretch of speech language detection listens to.

    It starts ``language_sample_offset_s`` into the speech, past an intro,
    or as late as the speech allows when it is shorter. Only the sample is
    copied, never the whole speech of a film.
    """
    chunks = speech or [{"start": 0, "end": len(samples)}]
    speech_samples = sum(chunk["end"] - chunk["start"] for chunk in chunks)
    wanted = int(choice.language_sample_length_s * SAMPLE_RATE)
    offset = int(choice.language_sample_offset_s * SAMPLE_RATE)
    skip = min(offset, max(speech_samples - wanted, 0))

    pieces: list[Audio] = []
    for chunk in chunks:
        start, end = chunk["start"] + skip, chunk["end"]
        skip = max(start - end, 0)
        if start >= end:
            continue
        pieces.append(samples[start : min(end, start + wanted)])
        wanted -= len(pieces[-1])
        if wanted <= 0:
            break
    return np.concatenate(pieces) if pieces else samples[:0]


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
