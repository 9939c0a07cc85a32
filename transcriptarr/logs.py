"""Logging set-up, done once at the entry point (and in each actor process)."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str = "INFO") -> None:
    """Send records of the ``transcriptarr`` loggers to stderr."""
    root = logging.getLogger("transcriptarr")
    root.setLevel(level.upper())
    if not any(getattr(h, "_transcriptarr", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._transcriptarr = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False
