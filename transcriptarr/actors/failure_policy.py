"""What a worker does with a job that raised: stop, fail, retry, or restart."""

from __future__ import annotations

import enum

from transcriptarr.errors import JobCancelled, TranscriptarrError, TransientError
from transcriptarr.transcription.failures import DeviceFailure


class Disposition(enum.Enum):
    """What a worker does with a job that raised."""

    STOP = "stop"
    FAIL = "fail"
    RETRY = "retry"
    RETRY_AND_EXIT = "retry_and_exit"


def classify(exc: BaseException) -> Disposition:
    """Decide the fate of a job from the exception that ended it.

    A cancel stops quietly; a GPU failure goes back to the queue and ends the
    process; a transient error or an unexpected one is retried with backoff;
    any other error of our tree (bad media, no model, impossible target)
    fails the job at once.
    """
    if isinstance(exc, JobCancelled):
        return Disposition.STOP
    if isinstance(exc, DeviceFailure):
        return Disposition.RETRY_AND_EXIT
    if isinstance(exc, TransientError):
        return Disposition.RETRY
    if isinstance(exc, TranscriptarrError):
        return Disposition.FAIL
    return Disposition.RETRY


def error_text(exc: BaseException) -> str:
    """The error a job record keeps."""
    if isinstance(exc, TranscriptarrError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"
