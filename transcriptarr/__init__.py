"""Transcriptarr: subtitles for a media library, written by Whisper on Ray."""

__version__ = "1.0.0"
