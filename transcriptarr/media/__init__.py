"""Media: probing with PyAV, audio decoding, languages, subtitle files."""
