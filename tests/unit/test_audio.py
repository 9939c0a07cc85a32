"""Choosing and decoding audio tracks of real media."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from transcriptarr.errors import InvalidInput, MediaError, NotFound
from transcriptarr.media.audio import (
    SAMPLE_RATE_HZ,
    decode_audio,
    pcm16_to_float32,
    select_audio_track,
)
from transcriptarr.media.probe import probe

MEDIA = Path(__file__).parents[1] / "fixtures" / "media"
ENGLISH_S = 23.0
SPANISH_S = 16.7
TOLERANCE_S = 0.2


def remux_with_audio_delay(target: Path, delay_ms: int) -> Path:
    """Copy english.mkv (video and audio, no re-encoding), audio made late."""
    source = av.open(str(MEDIA / "english.mkv"))
    with source, av.open(str(target), "w") as output:
        copies = {s.index: output.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is None or packet.pts is None:
                continue
            if packet.stream.type == "audio":
                packet.pts += delay_ms
                packet.dts += delay_ms
            packet.stream = copies[packet.stream.index]
            output.mux(packet)
    return target


def duration_s(samples: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> float:
    return len(samples) / sample_rate


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first, second)[0, 1])


@pytest.mark.parametrize("name", ["english.mkv", "english_untagged.mp4"])
def test_decoded_speech_lasts_as_long_as_the_file(name: str) -> None:
    samples = decode_audio(MEDIA / name)

    assert duration_s(samples) == pytest.approx(ENGLISH_S, abs=TOLERANCE_S)


def test_decoded_audio_is_mono_float32_within_full_scale() -> None:
    samples = decode_audio(MEDIA / "english.mkv")

    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert 0.1 < float(np.abs(samples).max()) <= 1.0


def test_other_sample_rate_scales_the_sample_count() -> None:
    samples = decode_audio(MEDIA / "english.mkv", sample_rate=8000)

    assert duration_s(samples, 8000) == pytest.approx(ENGLISH_S, abs=TOLERANCE_S)


def test_silence_decodes_to_zeros() -> None:
    samples = decode_audio(MEDIA / "silence.mkv")

    assert duration_s(samples) == pytest.approx(10.0, abs=TOLERANCE_S)
    assert float(np.abs(samples).max()) == 0.0


@pytest.mark.parametrize("source_lang", ["es", "spa", "Spanish"])
def test_spanish_track_is_chosen_when_spanish_is_asked(source_lang: str) -> None:
    info = probe(MEDIA / "dual_eng_spa.mkv")

    track = select_audio_track(info, source_lang)

    assert (track.index, track.language) == (1, "spa")


def test_chosen_spanish_track_decodes_the_spanish_speech() -> None:
    track = select_audio_track(probe(MEDIA / "dual_eng_spa.mkv"), "spa")

    from_dual = decode_audio(MEDIA / "dual_eng_spa.mkv", track.index)
    from_spanish = decode_audio(MEDIA / "spanish.mkv")

    assert duration_s(from_dual) == pytest.approx(SPANISH_S, abs=TOLERANCE_S)
    assert len(from_dual) == len(from_spanish)
    assert correlation(from_dual, from_spanish) > 0.99


def test_first_track_of_dual_file_is_the_english_speech() -> None:
    from_dual = decode_audio(MEDIA / "dual_eng_spa.mkv", 0)

    assert duration_s(from_dual) == pytest.approx(ENGLISH_S, abs=TOLERANCE_S)


def test_default_track_is_chosen_without_a_source_language() -> None:
    track = select_audio_track(probe(MEDIA / "dual_eng_spa.mkv"), None)

    assert (track.index, track.language) == (0, "eng")


def test_default_track_is_chosen_when_no_track_has_the_language() -> None:
    track = select_audio_track(probe(MEDIA / "dual_eng_spa.mkv"), "jpn")

    assert track.language == "eng"


def test_untagged_track_is_chosen_for_any_language() -> None:
    track = select_audio_track(probe(MEDIA / "english_untagged.mp4"), "eng")

    assert (track.index, track.language) == (0, None)


def test_choosing_a_track_in_a_file_without_audio_is_a_media_error() -> None:
    with pytest.raises(MediaError, match=r"no_audio\.mkv: the file has no audio"):
        select_audio_track(probe(MEDIA / "no_audio.mkv"), "eng")


def test_choosing_with_a_bad_language_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        select_audio_track(probe(MEDIA / "english.mkv"), "klingonese")

    assert caught.value.field == "source_lang"


@pytest.mark.parametrize("start_s", [0.0, 0.3, 5.0, 12.5])
def test_window_holds_exactly_the_asked_part(start_s: float) -> None:
    whole = decode_audio(MEDIA / "english.mkv")
    first = round(start_s * SAMPLE_RATE_HZ)

    window = decode_audio(MEDIA / "english.mkv", start_s=start_s, duration_s=3.0)

    assert len(window) == 3 * SAMPLE_RATE_HZ
    assert correlation(window, whole[first : first + len(window)]) > 0.99


def test_audio_that_starts_late_is_preceded_by_silence(tmp_path: Path) -> None:
    late = remux_with_audio_delay(tmp_path / "late.mkv", delay_ms=1000)
    on_time = decode_audio(MEDIA / "english.mkv")

    samples = decode_audio(late)

    gap = samples[:SAMPLE_RATE_HZ]
    assert float(np.abs(gap).max()) == 0.0
    rest = samples[SAMPLE_RATE_HZ : SAMPLE_RATE_HZ + len(on_time)]
    assert correlation(rest, on_time) > 0.99


def test_window_of_late_audio_keeps_the_video_timeline(tmp_path: Path) -> None:
    late = remux_with_audio_delay(tmp_path / "late.mkv", delay_ms=1000)
    on_time = decode_audio(MEDIA / "english.mkv", start_s=5.0, duration_s=3.0)

    window = decode_audio(late, start_s=6.0, duration_s=3.0)

    assert correlation(window, on_time) > 0.99


def test_window_that_runs_past_the_end_is_cut_short() -> None:
    window = decode_audio(MEDIA / "english.mkv", start_s=21.0, duration_s=5.0)

    assert duration_s(window) == pytest.approx(ENGLISH_S - 21.0, abs=TOLERANCE_S)


def test_window_after_the_end_is_empty() -> None:
    window = decode_audio(MEDIA / "english.mkv", start_s=40.0, duration_s=5.0)

    assert len(window) == 0


def test_window_of_the_second_track_comes_from_that_track() -> None:
    spanish = decode_audio(MEDIA / "spanish.mkv", start_s=2.0, duration_s=4.0)

    window = decode_audio(MEDIA / "dual_eng_spa.mkv", 1, start_s=2.0, duration_s=4.0)

    assert correlation(window, spanish) > 0.99


def test_truncated_file_is_a_media_error_saying_it_is_truncated() -> None:
    with pytest.raises(MediaError, match=r"truncated\.mkv: .* truncated"):
        decode_audio(MEDIA / "truncated.mkv")


def test_intact_start_of_a_truncated_file_still_decodes() -> None:
    window = decode_audio(MEDIA / "truncated.mkv", start_s=1.0, duration_s=3.0)

    assert duration_s(window) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.mkv", r"empty\.mkv: the file is empty"),
        ("not_media.mkv", r"not_media\.mkv: not a readable media file"),
        ("no_audio.mkv", r"no_audio\.mkv: the file has no audio track"),
    ],
)
def test_undecodable_files_are_media_errors_naming_the_file(
    name: str, message: str
) -> None:
    with pytest.raises(MediaError, match=message):
        decode_audio(MEDIA / name)


def test_missing_file_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"missing\.mkv"):
        decode_audio(MEDIA / "missing.mkv")


@pytest.mark.parametrize("track_index", [2, -1])
def test_track_index_outside_the_file_is_invalid_input(track_index: int) -> None:
    with pytest.raises(InvalidInput, match="the file has 2") as caught:
        decode_audio(MEDIA / "dual_eng_spa.mkv", track_index)

    assert caught.value.field == "track_index"


@pytest.mark.parametrize(
    "window", [{"start_s": -1.0}, {"duration_s": 0.0}, {"sample_rate": 0}]
)
def test_bad_window_is_invalid_input(window: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        decode_audio(MEDIA / "english.mkv", **window)  # type: ignore[arg-type]


def test_pcm16_full_scale_values_map_to_minus_one_and_almost_one() -> None:
    samples = pcm16_to_float32(b"\x00\x80\x00\x00\xff\x7f\x01\x00")

    assert samples.dtype == np.float32
    assert samples.tolist() == pytest.approx([-1.0, 0.0, 32767 / 32768, 1 / 32768])


def test_pcm16_odd_trailing_byte_is_dropped() -> None:
    samples = pcm16_to_float32(b"\x00\x40\x00\xc0\x7f")

    assert samples.tolist() == [0.5, -0.5]


@pytest.mark.parametrize("raw", [b"", b"\x01"])
def test_pcm16_shorter_than_one_sample_is_empty(raw: bytes) -> None:
    samples = pcm16_to_float32(raw)

    assert samples.dtype == np.float32
    assert len(samples) == 0


def test_pcm16_accepts_bytearray_and_memoryview() -> None:
    raw = b"\x00\x40" * 4

    assert pcm16_to_float32(bytearray(raw)).tolist() == [0.5] * 4
    assert pcm16_to_float32(memoryview(raw)).tolist() == [0.5] * 4
