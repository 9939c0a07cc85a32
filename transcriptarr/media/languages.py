"""Language codes, normalised in one place.

The REST API speaks ISO 639-2/T (``jpn``, ``deu``); input may also come as ISO
639-1 (``ja``), 639-2/B (``ger``, ``fre``, ``chi``) or an English name. Whisper
speaks its own list, mostly 639-1. ``python-iso639`` holds the tables.
"""

from __future__ import annotations

from functools import lru_cache

from faster_whisper.tokenizer import _LANGUAGE_CODES as _WHISPER_CODES
from iso639 import Language, LanguageNotFoundError

from transcriptarr.errors import InvalidInput

UNDETERMINED = "und"

# Whisper codes that are not ISO 639-1 or whose 639-1 form differs.
_WHISPER_SPECIAL = {"jw": "jav", "haw": "haw", "yue": "yue"}
_TO_WHISPER_SPECIAL = {value: key for key, value in _WHISPER_SPECIAL.items()}
# Norwegian macrolanguage tags map onto Whisper's "no"/"nn".
_TO_WHISPER_SPECIAL.update({"nob": "no", "nor": "no", "nno": "nn"})


@lru_cache(maxsize=4096)
def _lookup(value: str) -> Language | None:
    text = value.strip()
    if not text:
        return None
    if text.lower() in _WHISPER_SPECIAL:
        text = _WHISPER_SPECIAL[text.lower()]
    for candidate in (text.lower(), text, text.title()):
        try:
            return Language.match(candidate)
        except LanguageNotFoundError:
            continue
    return None


def to_iso639_2(value: str | None) -> str | None:
    """Return the 639-2/T code of ``value``, or None when it names no language.

    ``und``, ``mis``, ``zxx`` and empty values count as unknown.
    """
    if value is None:
        return None
    language = _lookup(value)
    if language is None:
        return None
    code = language.part2t or language.part3
    if code in {"und", "mis", "mul", "zxx"}:
        return None
    return code


def normalise(value: str, *, field: str = "language") -> str:
    """Like :func:`to_iso639_2` but a bad value is a 400 naming ``field``."""
    code = to_iso639_2(value)
    if code is None:
        raise InvalidInput(f"{field}: unknown language code {value!r}", field=field)
    return code


def to_whisper(value: str | None) -> str | None:
    """Return Whisper's code for a language, or None if Whisper lacks it."""
    code = to_iso639_2(value)
    if code is None:
        return None
    if code in _TO_WHISPER_SPECIAL:
        candidate = _TO_WHISPER_SPECIAL[code]
    else:
        language = _lookup(code)
        candidate = language.part1 if language and language.part1 else code
    return candidate if candidate in _WHISPER_CODES else None


def from_whisper(code: str) -> str | None:
    """Return the 639-2/T code of a Whisper language code."""
    return to_iso639_2(code)


def english_name(value: str) -> str | None:
    """The English name of a language, lower case (``japanese``)."""
    language = _lookup(value)
    return language.name.lower() if language else None


def to_iso639_1(value: str) -> str | None:
    """The two-letter code where one exists."""
    language = _lookup(value)
    return language.part1 if language else None


def from_tag(value: str | None) -> str | None:
    """The 639-2/T code of a language tag as containers and file names carry it.

    Accepts whatever :func:`to_iso639_2` accepts, plus BCP 47 tags with a region
    or script (``pt-BR``, ``zh_Hans``), which Matroska and file names use.
    """
    code = to_iso639_2(value)
    if code is not None or value is None:
        return code
    primary = value.replace("_", "-").split("-", 1)[0]
    return to_iso639_2(primary) if primary != value else None
