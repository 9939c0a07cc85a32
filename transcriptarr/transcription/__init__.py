"""Transcription: the model catalog, quality presets, the engine, and cues."""
