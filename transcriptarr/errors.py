"""The one exception tree of Transcriptarr.

Every error the service raises on purpose is a ``TranscriptarrError``. Each class
carries the HTTP status the front end answers with, so the mapping lives here and
the middleware reads it. Exceptions cross Ray actor boundaries, so every class
pickles with its keyword fields (see ``__reduce__``).
"""

from __future__ import annotations

from typing import Any


class TranscriptarrError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 500

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.detail, self.field))

    def to_body(self) -> dict[str, Any]:
        """The JSON body the REST API answers with."""
        body: dict[str, Any] = {"detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return body


def _rebuild(
    cls: type[TranscriptarrError], detail: str, field: str | None
) -> TranscriptarrError:
    return cls(detail, field=field)


class InvalidInput(TranscriptarrError):
    """The request (or a value in it) is not acceptable."""

    status_code = 400


class Unauthorized(TranscriptarrError):
    status_code = 401


class Forbidden(TranscriptarrError):
    status_code = 403


class NotFound(TranscriptarrError):
    status_code = 404


class Conflict(TranscriptarrError):
    status_code = 409


class PayloadTooLarge(TranscriptarrError):
    status_code = 413


class LeaseLost(Conflict):
    """A worker reported on a job whose lease it no longer holds."""


class StoreError(TranscriptarrError):
    """The database could not be read or written."""

    status_code = 503


class Unavailable(TranscriptarrError):
    """A part of the service (Ray, an actor) cannot be reached right now."""

    status_code = 503


class MediaError(TranscriptarrError):
    """A media file cannot be opened, probed or decoded."""

    status_code = 400


class ModelUnavailable(TranscriptarrError):
    """A Whisper model cannot be found locally nor downloaded."""

    status_code = 400


class TranscriptionError(TranscriptarrError):
    """The engine failed on a job for a reason that retrying will not fix."""


class TransientError(TranscriptarrError):
    """A failure worth retrying (the job goes back to the queue with backoff)."""

    status_code = 503


class JobCancelled(TranscriptarrError):
    """Raised inside a worker when the job it runs was cancelled."""

    status_code = 409


def all_error_classes() -> list[type[TranscriptarrError]]:
    """Every class of the tree, for the pickling test."""
    found: list[type[TranscriptarrError]] = []
    pending: list[type[TranscriptarrError]] = [TranscriptarrError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
