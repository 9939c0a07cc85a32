"""CTranslate2 and faster-whisper errors, translated into our tree where they enter.

A GPU error becomes :class:`DeviceFailure`, which ends the worker's process;
any other error becomes the caller's fallback class.
"""

from __future__ import annotations

import re

from transcriptarr.errors import TranscriptarrError, TranscriptionError
from transcriptarr.transcription.presets import Device

_DEVICE_ERROR = re.compile(r"cuda|cublas|cudnn|nccl", re.IGNORECASE)
_OUT_OF_MEMORY = re.compile(r"out of memory", re.IGNORECASE)


class DeviceFailure(TranscriptionError):
    """The GPU failed (CUDA error, out of memory); the worker should exit.

    A CUDA context that has seen such an error is not trustworthy for the rest
    of the process, so the job goes back to the queue and the worker restarts.
    """


def translate_error(
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
