"""Probing media files with PyAV, in process.

:func:`probe` reads a container's header (and, for Matroska and MP4, a moment
near its end) and reports what the scanner and the REST ``analyze`` route need:
audio tracks, embedded and external subtitles, duration, and whether it is a
video. :func:`open_media` is the one place where PyAV's errors on opening a
file become :class:`~transcriptarr.errors.MediaError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from av.stream import Disposition

from transcriptarr.errors import InvalidInput, MediaError, NotFound
from transcriptarr.media import languages
from transcriptarr.media.subtitles import ExternalSubtitle, find_external_subtitles

logger = logging.getLogger(__name__)

# Subtitle codecs that carry pictures, by FFmpeg codec name; used when PyAV's
# codec descriptor cannot say.
IMAGE_SUBTITLE_CODECS = frozenset(
    {"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub", "dvb_teletext"}
)
# Containers whose header states the duration; for others FFmpeg may only
# estimate it, so a short file is not taken for a truncated one.
_DECLARED_DURATION_FORMATS = frozenset({"matroska", "mov"})
_TAIL_PROBE_S = 1.0
_TAIL_PROBE_MAX_PACKETS = 5000
_TRUNCATION_TOLERANCE_S = 2.0
_TRUNCATION_TOLERANCE_RATIO = 0.02
_MICROSECONDS_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class AudioTrack:
    """One audio stream of a media file.

    Attributes:
        index: Position among the file's audio streams (0 = first audio).
        stream_index: Position among all streams of the container.
        codec: FFmpeg codec name (``aac``, ``opus``, ``ac3``).
        language: ISO 639-2/T code, None when untagged or ``und``.
        channels: Channel count.
        default: The container marks it as the default track.
        forced: The container marks it as forced.
        title: The track title, if the container names one.
    """

    index: int
    stream_index: int
    codec: str
    language: str | None
    channels: int
    default: bool
    forced: bool
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The REST ``audio_tracks`` entry."""
        return {
            "index": self.index,
            "codec": self.codec,
            "language": self.language,
            "channels": self.channels,
            "stream_index": self.stream_index,
            "default": self.default,
            "forced": self.forced,
            "title": self.title,
        }


@dataclass(frozen=True, slots=True)
class SubtitleTrack:
    """One subtitle stream embedded in a media file.

    Attributes:
        index: Position among the file's subtitle streams.
        stream_index: Position among all streams of the container.
        codec: FFmpeg codec name (``subrip``, ``ass``, ``hdmv_pgs_subtitle``).
        language: ISO 639-2/T code, None when untagged or ``und``.
        is_text: Text (SubRip, ASS, WebVTT, ...) rather than pictures (PGS,
            VobSub, DVB).
        forced: Marked forced (only foreign-language parts are subtitled).
        default: Marked as the default subtitle track.
        hearing_impaired: Marked for the hearing impaired (SDH).
    """

    index: int
    stream_index: int
    codec: str
    language: str | None
    is_text: bool
    forced: bool
    default: bool = False
    hearing_impaired: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The REST ``embedded_subtitles`` entry."""
        return {
            "index": self.index,
            "codec": self.codec,
            "language": self.language,
            "is_text": self.is_text,
            "forced": self.forced,
            "default": self.default,
            "hearing_impaired": self.hearing_impaired,
            "stream_index": self.stream_index,
        }


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What :func:`probe` found in one media file."""

    file_path: Path
    audio_tracks: list[AudioTrack]
    embedded_subtitles: list[SubtitleTrack]
    external_subtitles: list[ExternalSubtitle]
    duration_s: float
    is_video: bool

    def to_dict(self) -> dict[str, Any]:
        """The body of ``POST /api/scanner/analyze``."""
        return {
            "file_path": str(self.file_path),
            "audio_tracks": [track.to_dict() for track in self.audio_tracks],
            "embedded_subtitles": [s.to_dict() for s in self.embedded_subtitles],
            "external_subtitles": [s.to_dict() for s in self.external_subtitles],
            "duration_seconds": self.duration_s,
            "is_video": self.is_video,
        }


def probe(path: str | Path) -> MediaInfo:
    """Probe one media file (blocking: run it in a thread from async code).

    Args:
        path: The media file.

    Returns:
        Its tracks, duration and the subtitle files beside it.

    Raises:
        NotFound: ``path`` does not exist.
        InvalidInput: ``path`` is not a file.
        MediaError: The file is empty, not media, or truncated.
    """
    file_path = Path(path)
    with open_media(file_path) as container:
        duration_s = container_duration_s(container)
        check_not_truncated(container, file_path, duration_s)
        info = MediaInfo(
            file_path=file_path,
            audio_tracks=_audio_tracks(container),
            embedded_subtitles=_subtitle_tracks(container),
            external_subtitles=find_external_subtitles(file_path),
            duration_s=duration_s,
            is_video=_has_real_video(container),
        )
    logger.debug("probed %s: %.1f s", file_path, duration_s)
    return info


@contextmanager
def open_media(path: Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` with PyAV for reading, translating every failure.

    Raises:
        NotFound: ``path`` does not exist.
        InvalidInput: ``path`` is not a file.
        MediaError: The file is empty or PyAV cannot read it.
    """
    _check_file(path)
    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable media file ({_reason(exc)})") from exc
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    with container:
        yield container


def _check_file(path: Path) -> None:
    try:
        size_bytes = path.stat().st_size
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no such file", field="file_path") from exc
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise InvalidInput(f"{path}: not a file", field="file_path")
    if size_bytes == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes)")


def _reason(exc: av.FFmpegError) -> str:
    return str(exc.strerror or exc)


def container_duration_s(container: av.container.InputContainer) -> float:
    """The container's duration in seconds; 0.0 when it states none."""
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / _MICROSECONDS_PER_S
    stream_durations_s = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration is not None and stream.time_base is not None
    ]
    return max(stream_durations_s, default=0.0)


def states_its_duration(container: av.container.InputContainer) -> bool:
    """Whether the format writes the duration in its header (MKV, MP4)."""
    names = set(container.format.name.split(","))
    return bool(names & _DECLARED_DURATION_FORMATS)


def ends_early(end_s: float, expected_end_s: float) -> bool:
    """Whether media that stops at ``end_s`` falls short of ``expected_end_s``."""
    tolerance_s = max(
        _TRUNCATION_TOLERANCE_S, expected_end_s * _TRUNCATION_TOLERANCE_RATIO
    )
    return end_s < expected_end_s - tolerance_s


def check_not_truncated(
    container: av.container.InputContainer, path: Path, duration_s: float
) -> None:
    """Raise when the data stops well before the duration the header states.

    A download in progress or cut short keeps a valid header, so FFmpeg opens
    it; only reading near the stated end shows the data is missing.

    Raises:
        MediaError: The file is truncated or still being written.
    """
    if duration_s <= 0 or not states_its_duration(container):
        return
    last_end_s = _last_packet_end_s(container, duration_s)
    if last_end_s is not None and ends_early(last_end_s, duration_s):
        raise MediaError(
            f"{path}: the data ends at {last_end_s:.1f} s but the file states "
            f"{duration_s:.1f} s; it is truncated or still being written"
        )


def _last_packet_end_s(
    container: av.container.InputContainer, duration_s: float
) -> float | None:
    """Seek near the end and read on; the latest packet end seen, in seconds.

    Returns None when the check cannot tell (no timestamps, seek impossible).
    """
    target_s = max(0.0, duration_s - _TAIL_PROBE_S)
    try:
        container.seek(round(target_s * _MICROSECONDS_PER_S))
    except av.FFmpegError:
        return None
    last_end_s: float | None = None
    try:
        for count, packet in enumerate(container.demux()):
            last_end_s = _later(last_end_s, _packet_end_s(packet))
            done = last_end_s is not None and not ends_early(last_end_s, duration_s)
            if done or count >= _TAIL_PROBE_MAX_PACKETS:
                break
    except av.FFmpegError as exc:
        logger.debug("reading the tail stopped: %s", exc)
    return last_end_s


def _packet_end_s(packet: av.Packet[av.stream.Stream]) -> float | None:
    if packet.pts is None or packet.time_base is None:
        return None
    return float((packet.pts + (packet.duration or 0)) * packet.time_base)


def _later(first: float | None, second: float | None) -> float | None:
    if first is None or second is None:
        return first if second is None else second
    return max(first, second)


def _audio_tracks(container: av.container.InputContainer) -> list[AudioTrack]:
    return [
        AudioTrack(
            index=position,
            stream_index=stream.index,
            codec=codec_name(stream),
            language=_language(stream),
            channels=_channels(stream),
            default=bool(stream.disposition & Disposition.default),
            forced=bool(stream.disposition & Disposition.forced),
            title=stream.metadata.get("title") or None,
        )
        for position, stream in enumerate(container.streams.audio)
    ]


def _subtitle_tracks(container: av.container.InputContainer) -> list[SubtitleTrack]:
    return [
        SubtitleTrack(
            index=position,
            stream_index=stream.index,
            codec=codec_name(stream),
            language=_language(stream),
            is_text=_is_text_subtitle(stream),
            forced=bool(stream.disposition & Disposition.forced),
            default=bool(stream.disposition & Disposition.default),
            hearing_impaired=bool(stream.disposition & Disposition.hearing_impaired),
        )
        for position, stream in enumerate(container.streams.subtitles)
    ]


def _has_real_video(container: av.container.InputContainer) -> bool:
    """A video stream that is not a still (album art, a poster)."""
    still = Disposition.attached_pic | Disposition.still_image
    return any(not stream.disposition & still for stream in container.streams.video)


def codec_name(stream: av.stream.Stream) -> str:
    """FFmpeg's name of the stream's codec, as ffprobe reports it."""
    context = stream.codec_context
    if context is None:
        return "unknown"
    return str(context.codec.canonical_name or context.name)


def is_image_subtitle_codec(codec: str) -> bool:
    """Whether a subtitle codec carries pictures, judged by its name alone."""
    return codec in IMAGE_SUBTITLE_CODECS


def _is_text_subtitle(stream: av.stream.Stream) -> bool:
    context = stream.codec_context
    if context is not None and (context.codec.text_sub or context.codec.bitmap_sub):
        return bool(context.codec.text_sub)
    return not is_image_subtitle_codec(codec_name(stream))


def _language(stream: av.stream.Stream) -> str | None:
    return languages.from_tag(stream.metadata.get("language"))


def _channels(stream: av.stream.Stream) -> int:
    layout = getattr(stream.codec_context, "layout", None)
    return int(layout.nb_channels) if layout is not None else 0
