"""Language codes: every accepted form normalises to ISO 639-2/T."""

from __future__ import annotations

import pytest

from transcriptarr.errors import InvalidInput
from transcriptarr.media import languages


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ja", "jpn"),
        ("jpn", "jpn"),
        ("ger", "deu"),
        ("deu", "deu"),
        ("fre", "fra"),
        ("chi", "zho"),
        ("ES", "spa"),
        (" en ", "eng"),
        ("Spanish", "spa"),
        ("japanese", "jpn"),
    ],
)
def test_any_accepted_form_becomes_iso639_2t(value: str, expected: str) -> None:
    assert languages.to_iso639_2(value) == expected


@pytest.mark.parametrize("value", ["und", "mis", "zxx", "", "   ", None, "xx"])
def test_unknown_or_undetermined_language_is_none(value: str | None) -> None:
    assert languages.to_iso639_2(value) is None


def test_normalise_rejects_a_bad_code_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match="source_lang: unknown language") as caught:
        languages.normalise("klingonese", field="source_lang")

    assert caught.value.field == "source_lang"
    assert caught.value.status_code == 400


def test_normalise_accepts_639_1() -> None:
    assert languages.normalise("pt") == "por"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("jpn", "ja"), ("ger", "de"), ("en", "en"), ("nob", "no"), ("haw", "haw")],
)
def test_whisper_gets_its_own_codes(value: str, expected: str) -> None:
    assert languages.to_whisper(value) == expected


def test_language_whisper_lacks_has_no_whisper_code() -> None:
    assert languages.to_whisper("chr") is None


@pytest.mark.parametrize(("code", "expected"), [("ja", "jpn"), ("jw", "jav")])
def test_whisper_codes_come_back_as_iso639_2t(code: str, expected: str) -> None:
    assert languages.from_whisper(code) == expected


def test_two_letter_code_exists_for_major_languages_only() -> None:
    assert languages.to_iso639_1("spa") == "es"
    assert languages.to_iso639_1("haw") is None


def test_english_name_is_lower_case() -> None:
    assert languages.english_name("jpn") == "japanese"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("pt-BR", "por"),
        ("en-US", "eng"),
        ("zh_Hans", "zho"),
        ("es-419", "spa"),
        ("ger", "deu"),
        ("und", None),
        ("und-Latn", None),
        ("x-private", None),
        (None, None),
    ],
)
def test_bcp47_tags_from_containers_are_understood(
    tag: str | None, expected: str | None
) -> None:
    assert languages.from_tag(tag) == expected
