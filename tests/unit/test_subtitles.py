"""Subtitle files beside media: discovery, naming, atomic writing, our mark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transcriptarr.errors import InvalidInput, TransientError
from transcriptarr.media.subtitles import (
    TEMP_SUFFIX,
    find_external_subtitles,
    is_own_temporary,
    may_write,
    output_exists,
    output_path_for,
    temporary_path_for,
    write_subtitle_atomic,
    written_by_us,
)

SRT = "1\n00:00:01,000 --> 00:00:02,500\nHola, ¿qué tal?\n"


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """An episode in its own folder; discovery reads names only."""
    path = tmp_path / "ep.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3")
    return path


def xattrs_supported(folder: Path) -> bool:
    probe_file = folder / "xattr-probe"
    probe_file.write_text("")
    try:
        os.setxattr(probe_file, "user.transcriptarr-test", b"1")
    except OSError:
        return False
    finally:
        probe_file.unlink()
    return True


@pytest.fixture
def xattr_folder(tmp_path: Path) -> Path:
    if not xattrs_supported(tmp_path):
        pytest.skip("the temporary folder's filesystem keeps no user xattrs")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ep.en.srt", ("eng", False, False, "srt")),
        ("ep.spa.srt", ("spa", False, False, "srt")),
        ("ep.es.forced.srt", ("spa", True, False, "srt")),
        ("ep.eng.sdh.srt", ("eng", False, True, "srt")),
        ("ep.en.hi.srt", ("eng", False, True, "srt")),
        ("ep.en.cc.vtt", ("eng", False, True, "vtt")),
        ("ep.hi.srt", ("hin", False, False, "srt")),
        ("ep.srt", (None, False, False, "srt")),
        ("ep.forced.srt", (None, True, False, "srt")),
        ("ep.ger.ass", ("deu", False, False, "ass")),
        ("ep.fr.ssa", ("fra", False, False, "ssa")),
        ("ep.pt-BR.vtt", ("por", False, False, "vtt")),
        ("ep.English.srt", ("eng", False, False, "srt")),
        ("ep.ja.sub", ("jpn", False, False, "sub")),
        ("ep.EN.SRT", ("eng", False, False, "srt")),
    ],
)
def test_subtitle_file_beside_media_is_found_with_language_and_flags(
    media: Path, name: str, expected: tuple[str | None, bool, bool, str]
) -> None:
    (media.parent / name).write_text(SRT)

    [found] = find_external_subtitles(media)

    assert found.path == media.parent / name
    assert (found.language, found.forced, found.hearing_impaired, found.format) == (
        expected
    )


@pytest.mark.parametrize(
    "name",
    [
        "ep2.en.srt",
        "epi.en.srt",
        "ep.extended.en.srt",
        "ep.en.es.srt",
        "ep.en.txt",
        "ep.en.srt.bak",
        "ep.mkv.srt.part",
        "ep..srt",
        f".ep.en.srt.0a1b2c{TEMP_SUFFIX}",
    ],
)
def test_file_that_does_not_belong_to_the_media_is_ignored(
    media: Path, name: str
) -> None:
    (media.parent / name).write_text(SRT)

    assert find_external_subtitles(media) == []


def test_subtitles_are_listed_by_name_and_folders_are_skipped(media: Path) -> None:
    for name in ("ep.fr.srt", "ep.de.srt", "ep.en.srt"):
        (media.parent / name).write_text(SRT)
    (media.parent / "ep.es.srt").mkdir()

    names = [s.path.name for s in find_external_subtitles(media)]

    assert names == ["ep.de.srt", "ep.en.srt", "ep.fr.srt"]


def test_media_stem_with_dots_matches_only_its_own_subtitles(tmp_path: Path) -> None:
    media = tmp_path / "Show.S01E01.1080p.mkv"
    (tmp_path / "Show.S01E01.1080p.en.srt").write_text(SRT)
    (tmp_path / "Show.S01E02.1080p.en.srt").write_text(SRT)

    assert [s.language for s in find_external_subtitles(media)] == ["eng"]


@pytest.mark.parametrize("target_lang", ["es", "spa", "Spanish", "SPA"])
def test_output_name_uses_two_letter_code_by_default(target_lang: str) -> None:
    path = output_path_for(Path("/tv/Show S01E01.mkv"), target_lang)

    assert path == Path("/tv/Show S01E01.es.srt")


@pytest.mark.parametrize(("target_lang", "code"), [("de", "deu"), ("ger", "deu")])
def test_output_name_in_iso639_2_style_uses_the_terminology_code(
    target_lang: str, code: str
) -> None:
    path = output_path_for(Path("/tv/ep.mkv"), target_lang, language_style="iso639_2")

    assert path == Path(f"/tv/ep.{code}.srt")


def test_output_name_can_be_webvtt() -> None:
    path = output_path_for(Path("/tv/ep.mp4"), "ja", fmt="vtt")

    assert path == Path("/tv/ep.ja.vtt")


def test_language_without_two_letter_code_keeps_three_letters() -> None:
    assert output_path_for(Path("/tv/ep.mkv"), "haw") == Path("/tv/ep.haw.srt")


def test_output_name_round_trips_through_discovery(media: Path) -> None:
    output = output_path_for(media, "pt", language_style="iso639_2")
    output.write_text(SRT)

    assert [s.language for s in find_external_subtitles(media)] == ["por"]


def test_unknown_language_is_invalid_input_naming_target_lang() -> None:
    with pytest.raises(InvalidInput, match="klingonese") as caught:
        output_path_for(Path("/tv/ep.mkv"), "klingonese")

    assert caught.value.field == "target_lang"


def test_unknown_format_and_style_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="srt or vtt"):
        output_path_for(Path("/tv/ep.mkv"), "en", fmt="txt")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="iso639_1 or iso639_2"):
        output_path_for(
            Path("/tv/ep.mkv"),
            "en",
            language_style="bcp47",  # type: ignore[arg-type]
        )


def test_output_exists_answers_for_the_name_output_path_for_gives(
    media: Path,
) -> None:
    assert not output_exists(media, "spa")

    write_subtitle_atomic(output_path_for(media, "spa"), SRT)

    assert output_exists(media, "spa")
    assert output_exists(media, "es")
    assert not output_exists(media, "spa", language_style="iso639_2")
    assert not output_exists(media, "spa", fmt="vtt")


def test_atomic_write_creates_utf8_file_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "ep.es.srt"

    write_subtitle_atomic(target, SRT)

    assert target.read_bytes() == SRT.encode("utf-8")
    assert sorted(os.listdir(tmp_path)) == ["ep.es.srt"]


def test_atomic_write_replaces_previous_content(tmp_path: Path) -> None:
    target = tmp_path / "ep.es.srt"
    target.write_text("old subtitle that is much longer than the new one\n" * 50)

    write_subtitle_atomic(target, SRT)

    assert target.read_text(encoding="utf-8") == SRT
    assert sorted(os.listdir(tmp_path)) == ["ep.es.srt"]


def test_atomic_write_gives_files_a_readable_mode(tmp_path: Path) -> None:
    target = tmp_path / "ep.es.srt"
    umask = os.umask(0o022)
    try:
        write_subtitle_atomic(target, SRT)
    finally:
        os.umask(umask)

    assert target.stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_target_and_removes_the_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "ep.es.srt"
    target.mkdir()

    with pytest.raises(TransientError, match=r"cannot write .*ep\.es\.srt"):
        write_subtitle_atomic(target, SRT)

    assert target.is_dir()
    assert sorted(os.listdir(tmp_path)) == ["ep.es.srt"]


def test_write_into_missing_folder_is_a_transient_error(tmp_path: Path) -> None:
    with pytest.raises(TransientError, match="cannot write"):
        write_subtitle_atomic(tmp_path / "gone" / "ep.es.srt", SRT)

    assert os.listdir(tmp_path) == []


def test_temporary_names_are_hidden_and_recognised(tmp_path: Path) -> None:
    temporary = temporary_path_for(tmp_path / "ep.es.srt")

    assert temporary.parent == tmp_path
    assert temporary.name.startswith(".ep.es.srt.")
    assert is_own_temporary(temporary)
    assert is_own_temporary(str(temporary))
    assert temporary != temporary_path_for(tmp_path / "ep.es.srt")


@pytest.mark.parametrize(
    "name", ["ep.es.srt", ".ep.es.srt", f"ep.es.srt{TEMP_SUFFIX}", "ep.mkv"]
)
def test_other_files_are_not_taken_for_our_temporaries(name: str) -> None:
    assert not is_own_temporary(Path("/tv") / name)


def test_file_we_wrote_is_ours(xattr_folder: Path) -> None:
    target = xattr_folder / "ep.es.srt"

    write_subtitle_atomic(target, SRT)

    assert written_by_us(target)


def test_file_a_user_wrote_is_not_ours(xattr_folder: Path) -> None:
    target = xattr_folder / "ep.es.srt"
    target.write_text(SRT)

    assert not written_by_us(target)


def test_file_a_user_replaced_after_us_is_not_ours(xattr_folder: Path) -> None:
    target = xattr_folder / "ep.es.srt"
    write_subtitle_atomic(target, SRT)
    replacement = xattr_folder / "download.srt"
    replacement.write_text(SRT)

    replacement.replace(target)

    assert not written_by_us(target)


def test_missing_file_is_not_ours(tmp_path: Path) -> None:
    assert not written_by_us(tmp_path / "ep.es.srt")


def test_we_never_overwrite_a_users_file_unless_allowed(xattr_folder: Path) -> None:
    users = xattr_folder / "ep.en.srt"
    users.write_text(SRT)
    ours = xattr_folder / "ep.es.srt"
    write_subtitle_atomic(ours, SRT)

    assert not may_write(users, overwrite_existing=False)
    assert may_write(users, overwrite_existing=True)
    assert may_write(ours, overwrite_existing=False)
    assert may_write(xattr_folder / "ep.fr.srt", overwrite_existing=False)
