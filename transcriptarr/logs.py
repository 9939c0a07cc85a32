"""Logging set-up, done once at the entry point (and in each actor process)."""

from __future__ import annotations

import logging
import os

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
    # aiosqlite logs every statement's parameters at DEBUG, the API key among
    # them when it is saved: keep it above DEBUG whatever our level is.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))


LEVEL_ENV = "TRANSCRIPTARR_LOG_LEVEL"


def configure_from_env() -> None:
    """Ray's worker set-up hook: actor processes log like the server."""
    configure(os.environ.get(LEVEL_ENV, "INFO"))
