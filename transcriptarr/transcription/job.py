"""One job, start to finish: media in, a subtitle file beside it out.

:func:`run_job` is the pipeline a worker runs in a thread: check that the
output may be written, load the model, pick and decode the audio track,
transcribe, and write the subtitle atomically. It blocks throughout and knows
nothing of Ray or the job board: progress goes to a callback, and a stop check
polled by the engine lets a cancelled job end early.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from transcriptarr.errors import JobCancelled, TranscriptionError
from transcriptarr.media import languages
from transcriptarr.media.audio import decode_audio, select_audio_track
from transcriptarr.media.probe import probe
from transcriptarr.media.subtitles import (
    LANGUAGE_STYLES,
    OUTPUT_FORMATS,
    LanguageStyle,
    OutputFormat,
    may_write,
    output_path_for,
    write_subtitle_atomic,
)
from transcriptarr.models import Job, JobStage
from transcriptarr.transcription.cues import format_srt, format_vtt
from transcriptarr.transcription.engine import TranscriptionEngine
from transcriptarr.transcription.presets import ModelChoice

logger = logging.getLogger(__name__)

NO_SPEECH_NOTE = "No speech found in the audio; no subtitle file was written"

StageProgress = Callable[[JobStage, float, float | None], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """How and whether the subtitle file is written (``output_*`` settings)."""

    language_style: LanguageStyle = "iso639_1"
    fmt: OutputFormat = "srt"
    overwrite_existing: bool = False

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> OutputOptions:
        """Read the options from parsed settings; bad values take the default."""
        style = str(values.get("output_language_style", "iso639_1"))
        fmt = str(values.get("output_format", "srt")).lower()
        return cls(
            language_style=cast(
                LanguageStyle, style if style in LANGUAGE_STYLES else "iso639_1"
            ),
            fmt=cast(OutputFormat, fmt if fmt in OUTPUT_FORMATS else "srt"),
            overwrite_existing=bool(values.get("output_overwrite_existing", False)),
        )


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What one finished job produced.

    ``output_path`` is None when there was no speech (``note`` says so);
    ``source_lang`` is the audio's language, given or detected.
    """

    output_path: Path | None
    segments_count: int
    source_lang: str | None
    audio_duration_s: float
    note: str | None = None


def _no_progress(stage: JobStage, percent: float, eta_s: float | None) -> None:
    del stage, percent, eta_s


def _never() -> bool:
    return False


def run_job(
    job: Job,
    engine: TranscriptionEngine,
    choice: ModelChoice,
    output: OutputOptions,
    *,
    on_progress: StageProgress = _no_progress,
    should_stop: StopCheck = _never,
) -> JobOutcome:
    """Turn the job's media file into a subtitle file beside it.

    Args:
        job: The job as the board handed it out.
        engine: The worker's engine, holding its loaded models.
        choice: The model and decoding options of the job's preset.
        output: Naming, format and overwrite rules for the subtitle.
        on_progress: Called with the stage, percent and ETA seconds.
        should_stop: Polled between steps and by the engine; True cancels.

    Returns:
        Where the subtitle went, how many cues it holds, and the language.

    Raises:
        TranscriptionError: The output exists and is not ours to replace,
            or the engine cannot reach the target language.
        MediaError: The file cannot be probed or decoded.
        NotFound: The file does not exist.
        JobCancelled: ``should_stop`` answered True.
    """
    media_path = Path(job.file_path)
    target = output_path_for(
        media_path,
        job.target_lang,
        language_style=output.language_style,
        fmt=output.fmt,
    )
    _check_writable(target, output)

    on_progress(JobStage.LOADING_MODEL, 0.0, None)
    engine.load(choice)
    _stop_if_asked(should_stop)

    on_progress(JobStage.EXTRACTING_AUDIO, 0.0, None)
    started_s = time.perf_counter()
    info = probe(media_path)
    track = select_audio_track(info, job.source_lang)
    audio = decode_audio(media_path, track.index)
    logger.info(
        "job %s decoded audio track %d (%s) in %.1f s",
        job.id,
        track.index,
        track.language or "untagged",
        time.perf_counter() - started_s,
        extra={"job_id": job.id},
    )
    _stop_if_asked(should_stop)

    stage = _transcription_stage(job)
    result = engine.transcribe(
        audio,
        choice=choice,
        source_lang=job.source_lang,
        target_lang=job.target_lang,
        on_progress=lambda percent, eta_s: on_progress(stage, percent, eta_s),
        should_stop=should_stop,
    )
    if not result.cues:
        return JobOutcome(None, 0, result.language, result.duration_s, NO_SPEECH_NOTE)

    _stop_if_asked(should_stop)
    on_progress(JobStage.FINALIZING, 100.0, 0.0)
    render = format_vtt if output.fmt == "vtt" else format_srt
    _check_writable(target, output)
    write_subtitle_atomic(target, render(result.cues))
    return JobOutcome(target, result.segments_count, result.language, result.duration_s)


def _check_writable(target: Path, output: OutputOptions) -> None:
    # Checked first, so a job that may not write fails in seconds, and again
    # before writing, in case a user's file appeared meanwhile.
    if not may_write(target, overwrite_existing=output.overwrite_existing):
        raise TranscriptionError(
            f"{target} already exists and was not written by Transcriptarr; "
            "it is kept (set output_overwrite_existing to replace it)"
        )


def _transcription_stage(job: Job) -> JobStage:
    """Translating when the stated audio language differs from the target."""
    if job.source_lang is None:
        return JobStage.TRANSCRIBING
    source = languages.to_iso639_2(job.source_lang)
    return JobStage.TRANSCRIBING if source == job.target_lang else JobStage.TRANSLATING


def _stop_if_asked(should_stop: StopCheck) -> None:
    if should_stop():
        raise JobCancelled("The job was cancelled")
