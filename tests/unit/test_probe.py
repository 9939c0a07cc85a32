"""Probing real media made by tests/fixtures/make_fixtures.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from transcriptarr.errors import InvalidInput, MediaError, NotFound
from transcriptarr.media.probe import is_image_subtitle_codec, probe

MEDIA = Path(__file__).parents[1] / "fixtures" / "media"

Retag = Callable[[str | None, str], Path]


@pytest.fixture
def retagged(tmp_path: Path) -> Retag:
    """Copy english.mkv's audio (no re-encoding) into a file tagged ``language``."""

    def make(language: str | None, extension: str = "mkv") -> Path:
        target = tmp_path / f"retagged.{extension}"
        source = av.open(str(MEDIA / "english.mkv"))
        with source, av.open(str(target), "w") as output:
            audio_in = source.streams.audio[0]
            audio_out = output.add_stream_from_template(audio_in)
            if language is not None:
                audio_out.metadata["language"] = language
            for packet in source.demux(audio_in):
                if packet.dts is None:
                    continue
                packet.stream = audio_out
                output.mux(packet)
        return target

    return make


def test_english_file_reports_its_audio_track() -> None:
    info = probe(MEDIA / "english.mkv")

    [track] = info.audio_tracks
    assert (track.index, track.codec, track.language) == (0, "aac", "eng")
    assert track.channels == 1
    assert track.default
    assert not track.forced
    assert track.stream_index == 1


def test_dual_audio_file_lists_both_languages_in_stream_order() -> None:
    info = probe(MEDIA / "dual_eng_spa.mkv")

    assert [t.language for t in info.audio_tracks] == ["eng", "spa"]
    assert [t.index for t in info.audio_tracks] == [0, 1]
    assert [t.default for t in info.audio_tracks] == [True, False]


def test_untagged_mp4_audio_has_no_language() -> None:
    info = probe(MEDIA / "english_untagged.mp4")

    assert info.audio_tracks[0].language is None


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("eng", "eng"),
        ("ger", "deu"),
        ("fre", "fra"),
        ("de", "deu"),
        ("pt-BR", "por"),
        ("English", "eng"),
        ("und", None),
        (None, None),
    ],
)
def test_mkv_language_tags_are_reported_as_iso639_2t(
    retagged: Retag, tag: str | None, expected: str | None
) -> None:
    info = probe(retagged(tag, "mkv"))

    assert info.audio_tracks[0].language == expected


@pytest.mark.parametrize(("tag", "expected"), [("ger", "deu"), ("und", None)])
def test_mp4_language_tags_are_reported_as_iso639_2t(
    retagged: Retag, tag: str, expected: str | None
) -> None:
    info = probe(retagged(tag, "mp4"))

    assert info.audio_tracks[0].language == expected


def test_embedded_subtitle_tracks_are_listed_with_languages() -> None:
    info = probe(MEDIA / "with_subs.mkv")

    described = [(s.index, s.codec, s.language) for s in info.embedded_subtitles]
    assert described == [
        (0, "subrip", "spa"),
        (1, "ass", "fra"),
        (2, "dvd_subtitle", "deu"),
        (3, "hdmv_pgs_subtitle", "eng"),
    ]


def test_forced_subtitle_track_is_flagged() -> None:
    info = probe(MEDIA / "with_subs.mkv")

    forced = [s.language for s in info.embedded_subtitles if s.forced]
    assert forced == ["fra"]


def test_image_subtitle_tracks_are_not_text() -> None:
    info = probe(MEDIA / "with_subs.mkv")

    kinds = {s.codec: s.is_text for s in info.embedded_subtitles}
    assert kinds == {
        "subrip": True,
        "ass": True,
        "dvd_subtitle": False,
        "hdmv_pgs_subtitle": False,
    }


def test_hearing_impaired_subtitle_track_is_flagged() -> None:
    info = probe(MEDIA / "with_subs.mkv")

    flagged = [s.codec for s in info.embedded_subtitles if s.hearing_impaired]
    assert flagged == ["hdmv_pgs_subtitle"]


@pytest.mark.parametrize(
    ("codec", "is_image"),
    [
        ("hdmv_pgs_subtitle", True),
        ("dvd_subtitle", True),
        ("dvb_subtitle", True),
        ("subrip", False),
        ("ass", False),
        ("webvtt", False),
        ("mov_text", False),
    ],
)
def test_image_subtitle_codecs_are_told_apart_by_name(
    codec: str, is_image: bool
) -> None:
    assert is_image_subtitle_codec(codec) is is_image


def test_duration_comes_from_the_container() -> None:
    assert probe(MEDIA / "english.mkv").duration_s == pytest.approx(23.0, abs=0.2)
    assert probe(MEDIA / "spanish.mkv").duration_s == pytest.approx(16.7, abs=0.2)
    assert probe(MEDIA / "silence.mkv").duration_s == pytest.approx(10.0, abs=0.2)


def test_file_with_a_video_stream_is_a_video() -> None:
    assert probe(MEDIA / "english.mkv").is_video


def test_audio_only_file_is_not_a_video() -> None:
    assert not probe(MEDIA / "silence.mkv").is_video


def test_cover_art_does_not_make_a_file_a_video() -> None:
    info = probe(MEDIA / "cover_art.mp4")

    assert not info.is_video
    assert [t.language for t in info.audio_tracks] == ["eng"]


def test_video_without_audio_has_no_audio_tracks() -> None:
    info = probe(MEDIA / "no_audio.mkv")

    assert info.is_video
    assert info.audio_tracks == []


def test_subtitle_files_beside_the_media_are_reported(tmp_path: Path) -> None:
    media = tmp_path / "episode.mkv"
    shutil.copy(MEDIA / "english.mkv", media)
    (tmp_path / "episode.en.srt").write_text("1\n")
    (tmp_path / "episode.spa.forced.srt").write_text("1\n")
    (tmp_path / "episode2.de.srt").write_text("1\n")

    info = probe(media)

    found = [(s.path.name, s.language, s.forced) for s in info.external_subtitles]
    assert found == [
        ("episode.en.srt", "eng", False),
        ("episode.spa.forced.srt", "spa", True),
    ]


def test_analyze_body_has_the_rest_shape(tmp_path: Path) -> None:
    media = tmp_path / "episode.mkv"
    shutil.copy(MEDIA / "with_subs.mkv", media)
    (tmp_path / "episode.en.srt").write_text("1\n")

    body = probe(media).to_dict()

    assert body["file_path"] == str(media)
    audio = body["audio_tracks"][0]
    assert {k: audio[k] for k in ("index", "codec", "language", "channels")} == {
        "index": 0,
        "codec": "aac",
        "language": "eng",
        "channels": 1,
    }
    languages = [s["language"] for s in body["embedded_subtitles"]]
    assert languages == ["spa", "fra", "deu", "eng"]
    [external] = body["external_subtitles"]
    assert (external["path"], external["language"]) == (
        str(tmp_path / "episode.en.srt"),
        "eng",
    )
    assert body["duration_seconds"] == pytest.approx(23.0, abs=0.2)
    assert body["is_video"] is True


def test_empty_file_is_a_media_error_saying_it_is_empty() -> None:
    with pytest.raises(MediaError, match=r"empty\.mkv: the file is empty"):
        probe(MEDIA / "empty.mkv")


def test_text_file_is_a_media_error_saying_it_is_not_media() -> None:
    with pytest.raises(MediaError, match=r"not_media\.mkv: not a readable media"):
        probe(MEDIA / "not_media.mkv")


def test_truncated_file_is_a_media_error_saying_it_is_truncated() -> None:
    with pytest.raises(MediaError, match=r"truncated\.mkv: .* truncated") as caught:
        probe(MEDIA / "truncated.mkv")

    assert "23.0 s" in caught.value.detail


def test_missing_file_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"missing\.mkv: no such file"):
        probe(MEDIA / "missing.mkv")


def test_directory_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a file"):
        probe(MEDIA)
