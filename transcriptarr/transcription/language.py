"""Language planning: the audio's language and the task that yields the target.

A job settles its language and task before any decoding starts, so a request
Whisper cannot serve (translation into a language other than English, a
language it does not know) fails in seconds rather than after an hour of work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from transcriptarr.errors import TranscriptionError
from transcriptarr.media import languages
from transcriptarr.models import TaskKind
from transcriptarr.transcription.presets import ModelChoice

if TYPE_CHECKING:
    from transcriptarr.transcription.engine import Audio

logger = logging.getLogger(__name__)

ENGLISH = "eng"


@dataclass(frozen=True, slots=True)
class LanguagePlan:
    """The language of the audio and the task that yields the target."""

    language: str
    whisper_code: str
    task: TaskKind
    detected: bool = False
    probability: float | None = None


def given_language(
    source_lang: str | None, *, multilingual: bool, model_name: str
) -> str | None:
    """The stated audio language, or None to detect it.

    Args:
        source_lang: the language the job names, if any.
        multilingual: whether the model understands more than English.
        model_name: the model, for the error text.

    Raises:
        TranscriptionError: an English-only model was asked for other audio.
    """
    if not multilingual:
        if source_lang is not None and languages.to_iso639_2(source_lang) != ENGLISH:
            raise TranscriptionError(
                f"Model {model_name} understands English only; "
                f"choose a multilingual model for {source_lang} audio"
            )
        return ENGLISH
    if source_lang is None:
        return None
    if languages.to_whisper(source_lang) is None:
        logger.warning("Whisper lacks language %r; detecting it instead", source_lang)
        return None
    return languages.normalise(source_lang, field="source_lang")


def plan_task(language: str, target: str) -> LanguagePlan:
    """Choose the task that turns ``language`` audio into ``target`` cues.

    Raises:
        TranscriptionError: Whisper translates only into English.
    """
    whisper_code = languages.to_whisper(language)
    if whisper_code is None:
        raise TranscriptionError(f"Whisper cannot transcribe {_name(language)}")
    if language == target:
        return LanguagePlan(language, whisper_code, TaskKind.TRANSCRIBE)
    if target == ENGLISH:
        return LanguagePlan(language, whisper_code, TaskKind.TRANSLATE)
    choices = " or ".join(dict.fromkeys([language, ENGLISH]))
    raise TranscriptionError(
        f"Translation to {_name(target)} is not available yet: the audio is in "
        f"{_name(language)} and Whisper translates only into English; "
        f"ask for {choices} subtitles"
    )


def language_sample(
    samples: Audio,
    speech: list[dict[str, int]] | None,
    choice: ModelChoice,
    *,
    sample_rate: int,
) -> Audio:
    """The stretch of speech language detection listens to.

    It starts ``language_sample_offset_s`` into the speech, past an intro,
    or as late as the speech allows when it is shorter. Only the sample is
    copied, never the whole speech of a film.
    """
    chunks = speech or [{"start": 0, "end": len(samples)}]
    speech_samples = sum(chunk["end"] - chunk["start"] for chunk in chunks)
    wanted = int(choice.language_sample_length_s * sample_rate)
    offset = int(choice.language_sample_offset_s * sample_rate)
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


def _name(code: str) -> str:
    name = languages.english_name(code)
    return name.title() if name else code
