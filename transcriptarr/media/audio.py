"""Audio for Whisper: choosing a track and decoding it to 16 kHz mono float32.

:func:`decode_audio` streams packets through PyAV's resampler frame by frame into
one preallocated array, so memory holds the output samples and little else.
A window (``start_s``, ``duration_s``) decodes only part of a file, seeking to
it, for language detection samples.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from transcriptarr.errors import InvalidInput, MediaError
from transcriptarr.media import languages
from transcriptarr.media.probe import (
    AudioTrack,
    MediaInfo,
    container_duration_s,
    ends_early,
    open_media,
    states_its_duration,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
_PCM16_FULL_SCALE = 32768.0
_UNKNOWN_DURATION_CAPACITY_S = 60.0
_CAPACITY_MARGIN_S = 1.0
_GROWTH_FACTOR = 1.5
# Seek this much before a window: demuxers land on the first packet at or after
# the target, and the decoder needs a packet of history to decode cleanly.
_SEEK_PREROLL_S = 1.0
_SECONDS_PER_MINUTE = 60
_SECONDS_PER_HOUR = 3600
_MICROSECONDS_PER_S = 1_000_000

FloatArray = npt.NDArray[np.float32]


def select_audio_track(info: MediaInfo, source_lang: str | None) -> AudioTrack:
    """The track to transcribe.

    Args:
        info: The probed media file.
        source_lang: The wanted spoken language in any accepted form, or None.

    Returns:
        The first track in ``source_lang`` (the default one among several),
        else the default track, else the first.

    Raises:
        MediaError: The file has no audio track.
        InvalidInput: ``source_lang`` is not a language.
    """
    if not info.audio_tracks:
        raise MediaError(f"{info.file_path}: the file has no audio track")
    candidates = info.audio_tracks
    if source_lang is not None:
        wanted = languages.normalise(source_lang, field="source_lang")
        matching = [t for t in candidates if t.language == wanted]
        candidates = matching or candidates
    defaults = [track for track in candidates if track.default]
    return (defaults or candidates)[0]


def decode_audio(
    path: str | Path,
    track_index: int = 0,
    *,
    sample_rate: int = SAMPLE_RATE_HZ,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> FloatArray:
    """Decode one audio track to mono float32 samples in [-1, 1].

    Args:
        path: The media file.
        track_index: Position among the file's audio streams
            (:attr:`AudioTrack.index`).
        sample_rate: Output sample rate in Hz.
        start_s: Where to start, in seconds from the beginning.
        duration_s: How much to decode; None decodes to the end.

    Returns:
        The samples; shorter than asked when the file ends first.

    Raises:
        NotFound: The file does not exist.
        InvalidInput: A bad track index or window.
        MediaError: The file cannot be read or decoded, or is truncated.
    """
    _check_window(sample_rate, start_s, duration_s)
    file_path = Path(path)
    with open_media(file_path) as container:
        stream = _audio_stream(container, file_path, track_index)
        samples = _decode_window(
            container, stream, file_path, sample_rate, start_s, duration_s
        )
        end_s = start_s + len(samples) / sample_rate
        _check_complete(container, stream, file_path, end_s, start_s, duration_s)
    logger.debug(
        "decoded %.1f s of audio track %d from %s", end_s, track_index, file_path
    )
    return samples


def pcm16_to_float32(raw: bytes | bytearray | memoryview) -> FloatArray:
    """Raw signed 16-bit little-endian mono PCM to float32 in [-1, 1).

    An odd trailing byte (half a sample) is dropped.
    """
    sample_count = len(raw) // 2
    pcm = np.frombuffer(raw, dtype="<i2", count=sample_count)
    return pcm.astype(np.float32) / np.float32(_PCM16_FULL_SCALE)


def _check_window(sample_rate: int, start_s: float, duration_s: float | None) -> None:
    if sample_rate <= 0:
        raise InvalidInput(f"sample_rate must be positive, not {sample_rate}")
    if start_s < 0:
        raise InvalidInput(f"start_s must not be negative, not {start_s}")
    if duration_s is not None and duration_s <= 0:
        raise InvalidInput(f"duration_s must be positive, not {duration_s}")


def _audio_stream(
    container: av.container.InputContainer, path: Path, track_index: int
) -> av.audio.stream.AudioStream:
    streams = container.streams.audio
    if not streams:
        raise MediaError(f"{path}: the file has no audio track")
    if not 0 <= track_index < len(streams):
        raise InvalidInput(
            f"{path}: no audio track {track_index}; "
            f"the file has {len(streams)} (0 to {len(streams) - 1})",
            field="track_index",
        )
    return streams[track_index]


def _decode_window(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    path: Path,
    sample_rate: int,
    start_s: float,
    duration_s: float | None,
) -> FloatArray:
    """Seek, decode, resample, and cut exactly the asked window.

    Times count from the container's start, so sample 0 of a whole-file
    decode lines up with the first video frame even when the audio starts
    later (the gap is filled with silence) or the timestamps start at an
    offset (MPEG-TS).
    """
    window_start_s = _container_start_s(container) + start_s
    if start_s > 0:
        _seek(container, stream, path, window_start_s)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    expected_s = duration_s or _declared_duration_s(container, stream) - start_s
    buffer = _SampleBuffer(_capacity_samples(expected_s, sample_rate))
    wanted = None if duration_s is None else round(duration_s * sample_rate)
    skip: int | None = None

    for frame in _frames(container, stream, path):
        if skip is None:
            skip = _samples_before(frame, window_start_s, sample_rate)
            buffer.append_silence(max(0, -skip))
            skip = max(0, skip)
        _append_resampled(buffer, resampler.resample(frame))
        if wanted is not None and buffer.count >= skip + wanted:
            break

    _append_resampled(buffer, resampler.resample(None))
    first = skip or 0
    return buffer.window(first, None if wanted is None else first + wanted)


def _container_start_s(container: av.container.InputContainer) -> float:
    start_us = container.start_time
    return float(start_us) / _MICROSECONDS_PER_S if start_us is not None else 0.0


def _append_resampled(buffer: _SampleBuffer, frames: list[av.AudioFrame]) -> None:
    for frame in frames:
        # Packed "flt" mono: one row of float32; asarray makes no copy.
        buffer.append(np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1))


def _seek(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    path: Path,
    start_s: float,
) -> None:
    if stream.time_base is None:
        raise MediaError(f"{path}: audio track has no time base; cannot seek")
    target_s = max(0.0, start_s - _SEEK_PREROLL_S)
    try:
        container.seek(int(target_s / stream.time_base), stream=stream)
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot seek to {start_s:.1f} s ({exc})") from exc


def _samples_before(frame: av.AudioFrame, start_s: float, sample_rate: int) -> int:
    """How many samples the first decoded frame starts before ``start_s``.

    Seeking lands a little before the asked time: the surplus is cut. A
    negative count means the audio starts after ``start_s``.
    """
    frame_start_s = frame.time
    if frame_start_s is None:
        return 0
    return round((start_s - frame_start_s) * sample_rate)


def _frames(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    path: Path,
) -> Iterator[av.AudioFrame]:
    """Decoded frames of ``stream``; a few corrupt packets are skipped."""
    bad_packets = 0
    last_error: av.FFmpegError | None = None
    decoded_any = False
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                bad_packets += 1
                last_error = exc
                continue
            decoded_any = decoded_any or bool(frames)
            yield from frames
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: reading audio failed ({exc})") from exc

    if bad_packets and not decoded_any:
        raise MediaError(f"{path}: the audio cannot be decoded ({last_error})")
    if bad_packets:
        logger.warning("%s: skipped %d corrupt audio packets", path, bad_packets)


def _check_complete(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    path: Path,
    end_s: float,
    start_s: float,
    duration_s: float | None,
) -> None:
    """Raise when the track stops well before the duration its header states."""
    declared_s = _track_duration_s(stream)
    if declared_s is None or not states_its_duration(container):
        return
    expected_end_s = declared_s
    if duration_s is not None:
        expected_end_s = min(declared_s, start_s + duration_s)
    if ends_early(end_s, expected_end_s):
        raise MediaError(
            f"{path}: the audio ends at {end_s:.1f} s but the track states "
            f"{declared_s:.1f} s; the file is truncated"
        )


def _track_duration_s(stream: av.audio.stream.AudioStream) -> float | None:
    """The duration one track states: MP4 in the stream, MKV in a tag."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return _parse_tag_duration_s(stream.metadata.get("DURATION"))


def _parse_tag_duration_s(text: str | None) -> float | None:
    """Parse Matroska's ``HH:MM:SS.nnnnnnnnn`` DURATION tag."""
    if not text:
        return None
    try:
        hours, minutes, seconds = text.split(":")
        return (
            int(hours) * _SECONDS_PER_HOUR
            + int(minutes) * _SECONDS_PER_MINUTE
            + float(seconds)
        )
    except ValueError:
        return None


def _declared_duration_s(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float:
    track_s = _track_duration_s(stream)
    return track_s if track_s is not None else container_duration_s(container)


def _capacity_samples(expected_s: float, sample_rate: int) -> int:
    if expected_s <= 0:
        expected_s = _UNKNOWN_DURATION_CAPACITY_S
    return round((expected_s + _CAPACITY_MARGIN_S) * sample_rate)


class _SampleBuffer:
    """A float32 array filled in order, grown only when the estimate was short."""

    def __init__(self, capacity_samples: int) -> None:
        self._data: FloatArray = np.empty(capacity_samples, dtype=np.float32)
        self.count = 0

    def append(self, chunk: FloatArray) -> None:
        end = self.count + len(chunk)
        if end > len(self._data):
            self._grow(end)
        self._data[self.count : end] = chunk
        self.count = end

    def append_silence(self, sample_count: int) -> None:
        if sample_count > 0:
            self.append(np.zeros(sample_count, dtype=np.float32))

    def window(self, first: int, stop: int | None) -> FloatArray:
        """Samples ``first`` to ``stop``, copied out when most would be slack."""
        end = self.count if stop is None else min(stop, self.count)
        samples = self._data[min(first, end) : end]
        return samples.copy() if len(samples) < len(self._data) // 2 else samples

    def _grow(self, needed: int) -> None:
        capacity = max(needed, int(len(self._data) * _GROWTH_FACTOR))
        bigger: FloatArray = np.empty(capacity, dtype=np.float32)
        bigger[: self.count] = self._data[: self.count]
        self._data = bigger
