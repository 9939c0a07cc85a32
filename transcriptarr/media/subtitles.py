"""Subtitle files beside the media: finding them, naming ours, writing ours.

Names follow the convention of Plex, Jellyfin and Bazarr:
``<media stem>[.<language>][.forced|.sdh|.cc|.hi].<extension>``. One function,
:func:`output_path_for`, decides the name of the file this service writes, and
:func:`output_exists` asks the same function whether it is already there.

Files are written atomically (:func:`write_subtitle_atomic`) and marked with the
extended attribute ``user.transcriptarr`` so that :func:`written_by_us` can tell
our files from a user's. On a filesystem without user extended attributes (some
network shares, FAT) the mark cannot be kept: every existing file then counts as
the user's and is only replaced when the ``output_overwrite_existing`` setting
allows it.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transcriptarr.errors import InvalidInput, TransientError
from transcriptarr.media import languages

logger = logging.getLogger(__name__)

LanguageStyle = Literal["iso639_1", "iso639_2"]
OutputFormat = Literal["srt", "vtt"]

SUBTITLE_EXTENSIONS = frozenset({"srt", "ass", "ssa", "vtt", "sub", "sup"})
OUTPUT_FORMATS = frozenset({"srt", "vtt"})
LANGUAGE_STYLES = frozenset({"iso639_1", "iso639_2"})
FORCED_WORDS = frozenset({"forced", "foreign"})
HEARING_IMPAIRED_WORDS = frozenset({"sdh", "cc"})
# "hi" is Hindi on its own (episode.hi.srt) and hearing impaired after a
# language (episode.en.hi.srt).
AMBIGUOUS_HEARING_IMPAIRED = "hi"
IGNORED_WORDS = frozenset({"default", "full"})

TEMP_SUFFIX = ".transcriptarr-tmp"
MARK_ATTRIBUTE = "user.transcriptarr"
MARK_VALUE = b"1"
_TEMP_TOKEN_BYTES = 6
_NO_XATTR_ERRNOS = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM})


@dataclass(frozen=True, slots=True)
class ExternalSubtitle:
    """A subtitle file next to a media file.

    Attributes:
        path: The subtitle file.
        language: ISO 639-2/T code from the file name, None when it names none.
        forced: Named ``.forced`` (only foreign-language parts are subtitled).
        hearing_impaired: Named ``.sdh``, ``.cc`` or ``.<language>.hi``.
        format: The file extension in lower case (``srt``, ``ass``, ...).
    """

    path: Path
    language: str | None
    forced: bool
    hearing_impaired: bool
    format: str

    def to_dict(self) -> dict[str, Any]:
        """The REST ``external_subtitles`` entry."""
        return {
            "path": str(self.path),
            "language": self.language,
            "forced": self.forced,
            "hearing_impaired": self.hearing_impaired,
            "format": self.format,
        }


def find_external_subtitles(media_path: Path) -> list[ExternalSubtitle]:
    """Subtitle files that belong to ``media_path``, sorted by name.

    A file belongs to the media when its name is the media stem, then only
    language and flag words, then a subtitle extension: ``ep.en.srt`` and
    ``ep.spa.forced.ass`` belong to ``ep.mkv``; ``ep2.en.srt`` and
    ``ep.extended.en.srt`` do not. Our own temporary files are skipped.
    """
    prefix = media_path.stem + "."
    found: list[ExternalSubtitle] = []
    try:
        with os.scandir(media_path.parent) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        logger.warning("cannot list %s: %s", media_path.parent, exc)
        return found
    for entry in entries:
        if not entry.name.startswith(prefix) or is_own_temporary(entry.name):
            continue
        subtitle = _parse_name(entry.name[len(prefix) :])
        if subtitle is not None and entry.is_file():
            found.append(subtitle.with_path(Path(entry.path)))
    return found


@dataclass(frozen=True, slots=True)
class _ParsedName:
    language: str | None
    forced: bool
    hearing_impaired: bool
    format: str

    def with_path(self, path: Path) -> ExternalSubtitle:
        return ExternalSubtitle(
            path, self.language, self.forced, self.hearing_impaired, self.format
        )


def _parse_name(suffix: str) -> _ParsedName | None:
    """Read what follows the media stem (``en.forced.srt``).

    Returns:
        The language, flags and format, or None when the suffix is not a
        subtitle extension preceded only by language and flag words.
    """
    *words, extension = suffix.split(".")
    if extension.lower() not in SUBTITLE_EXTENSIONS or "" in words:
        return None
    language: str | None = None
    forced = hearing_impaired = False
    for position, word in reversed(list(enumerate(words))):
        lowered = word.lower()
        if lowered in FORCED_WORDS:
            forced = True
        elif lowered in HEARING_IMPAIRED_WORDS or (
            lowered == AMBIGUOUS_HEARING_IMPAIRED and position > 0
        ):
            hearing_impaired = True
        elif lowered in IGNORED_WORDS:
            continue
        elif language is None and (code := languages.from_tag(word)):
            language = code
        else:
            return None
    return _ParsedName(language, forced, hearing_impaired, extension.lower())


def output_path_for(
    media_path: Path,
    target_lang: str,
    *,
    language_style: LanguageStyle = "iso639_1",
    fmt: OutputFormat = "srt",
) -> Path:
    """The path of the subtitle this service writes for ``media_path``.

    Args:
        media_path: The media file; the subtitle goes beside it.
        target_lang: The subtitle language, in any form languages accepts.
        language_style: ``iso639_1`` writes ``ep.es.srt``, ``iso639_2``
            writes ``ep.spa.srt``. Languages without a two-letter code use
            their three-letter code in both styles.
        fmt: ``srt`` or ``vtt``, the file extension.

    Returns:
        ``<stem>.<lang>.<fmt>`` in the media's folder.

    Raises:
        InvalidInput: An unknown language, style or format.
    """
    code = languages.normalise(target_lang, field="target_lang")
    if language_style not in LANGUAGE_STYLES:
        raise InvalidInput(
            f"language_style must be iso639_1 or iso639_2, not {language_style!r}",
            field="language_style",
        )
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"format must be srt or vtt, not {fmt!r}", field="format")
    if language_style == "iso639_1":
        code = languages.to_iso639_1(code) or code
    return media_path.with_name(f"{media_path.stem}.{code}.{fmt}")


def output_exists(
    media_path: Path,
    target_lang: str,
    *,
    language_style: LanguageStyle = "iso639_1",
    fmt: OutputFormat = "srt",
) -> bool:
    """Whether the file :func:`output_path_for` names is already there."""
    path = output_path_for(
        media_path, target_lang, language_style=language_style, fmt=fmt
    )
    return path.is_file()


def may_write(path: Path, *, overwrite_existing: bool) -> bool:
    """Whether writing ``path`` keeps the promise not to clobber a user's file.

    Args:
        path: The subtitle file about to be written.
        overwrite_existing: The ``output_overwrite_existing`` setting.

    Returns:
        True when the file is absent, was written by us, or the setting allows
        replacing anything.
    """
    if overwrite_existing or not path.exists():
        return True
    return written_by_us(path)


def is_own_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names one of our in-progress temporary files."""
    name = os.path.basename(path)
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def temporary_path_for(path: Path) -> Path:
    """A fresh hidden name beside ``path`` that no media server picks up."""
    token = secrets.token_hex(_TEMP_TOKEN_BYTES)
    return path.with_name(f".{path.name}.{token}{TEMP_SUFFIX}")


def write_subtitle_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file.

    The text goes to a hidden temporary file in the same folder, is flushed and
    fsynced, marked as ours, renamed over ``path``, and the folder is fsynced
    so the rename survives a power cut. On failure the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path: The subtitle file to create or replace.
        text: The whole subtitle, written as UTF-8.

    Raises:
        TransientError: The folder cannot be written (full disk, permissions).
    """
    temporary = temporary_path_for(path)
    try:
        _write_synced(temporary, text.encode("utf-8"))
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        _remove_quietly(temporary)
        raise TransientError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove_quietly(temporary)
        raise
    logger.debug("wrote %s", path)


def written_by_us(path: Path) -> bool:
    """Whether ``path`` carries our mark (see the module docstring).

    A file whose filesystem keeps no extended attributes, or that a user
    rewrote after us, is not ours.
    """
    try:
        return os.getxattr(path, MARK_ATTRIBUTE) == MARK_VALUE
    except OSError:
        return False


def _write_synced(path: Path, data: bytes) -> None:
    # O_EXCL: the random name must be new; 0o666 lets the umask decide the mode
    # as for any file the user's tools create.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, 0o666)
    with open(descriptor, "wb", closefd=True) as file:
        file.write(data)
        file.flush()
        _mark(file.fileno(), path)
        os.fsync(file.fileno())


def _mark(descriptor: int, path: Path) -> None:
    try:
        os.setxattr(descriptor, MARK_ATTRIBUTE, MARK_VALUE)
    except OSError as exc:
        if exc.errno not in _NO_XATTR_ERRNOS:
            raise
        logger.debug("no extended attributes on %s: %s", path.parent, exc)


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("cannot remove temporary file %s: %s", path, exc)
