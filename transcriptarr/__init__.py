"""Transcriptarr: subtitles for a media library, written by Whisper on Ray."""

import os

__version__ = "1.0.0"

# Ray reads its authentication mode once, when it is first imported; this
# package is imported before any of its modules import Ray, so token auth is on
# in every process of the service unless the environment says otherwise.
os.environ.setdefault("RAY_AUTH_MODE", "token")
