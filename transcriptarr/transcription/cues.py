"""Subtitle cues: Whisper's timed words regrouped into readable cues, and SRT/VTT.

A cue stays on screen at most about 7 seconds and holds at most two lines of
about 42 characters. Cues split at word boundaries, preferring the end of a
sentence, then a pause in the speech, then a comma. A cue starts at its first
word and ends at its last, so it never outlasts the speech it carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MAX_CUE_S = 7.0
MAX_LINE_CHARS = 42
MAX_LINES = 2
PAUSE_S = 0.6
LONG_PAUSE_S = 1.5
MIN_CUE_S = 0.01

# Full-width forms (CJK) written as escapes: they look like their ASCII twins.
_SENTENCE_END = ".?!\u2026\u3002\uff1f\uff01"
_CLAUSE_END = ",;:\u2014\u2013\uff0c\u3001\uff1b\uff1a"
_CLOSERS = "\"')]}\u00bb\u201d\u2019"
# A break earlier in a cue than this share of its room leaves a stub cue.
_MIN_FILL = 0.3
# A line break after punctuation is worth this many characters of imbalance.
_PUNCTUATION_BONUS_CHARS = 6


@dataclass(frozen=True, slots=True)
class Word:
    """A timed word as Whisper gives it: a leading space marks a new word.

    Languages written without spaces carry words without one, and joining the
    texts as they are gives the right spacing in both cases.
    """

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of transcript; ``words`` is empty without word timestamps."""

    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: its text is one line; formatting wraps it."""

    start_s: float
    end_s: float
    text: str


def from_whisper(segment: Any) -> Segment:
    """Adapt a ``faster_whisper`` segment (with or without words)."""
    words = tuple(
        Word(float(word.start), float(word.end), str(word.word))
        for word in segment.words or ()
    )
    return Segment(float(segment.start), float(segment.end), str(segment.text), words)


def build_cues(segments: Iterable[Segment]) -> list[Cue]:
    """Regroup the words of ``segments`` into subtitle cues.

    Args:
        segments: transcript segments in time order; segments without words
            are split over their time in proportion to the length of the text.

    Returns:
        Cues in time order, none empty, none overlapping.
    """
    words = [word for segment in segments for word in _words_of(segment)]
    return _settle([_cue_of(group) for group in _group(words)])


def wrap_lines(text: str, max_line_chars: int = MAX_LINE_CHARS) -> list[str]:
    """Wrap ``text`` into at most two lines at a word boundary.

    A text too long for two lines still gets two (the longest as short as
    possible); the cue builder keeps its cues within the limit.
    """
    text = " ".join(text.split())
    if len(text) <= max_line_chars:
        return [text]
    tokens = text.split(" ")
    if len(tokens) == 1:
        return [text]
    splits = [
        (" ".join(tokens[:i]), " ".join(tokens[i:])) for i in range(1, len(tokens))
    ]
    top, bottom = min(splits, key=lambda pair: _wrap_cost(pair, max_line_chars))
    return [top, bottom]


def format_srt(cues: Sequence[Cue]) -> str:
    """Render cues as SubRip: numbered from 1, ``HH:MM:SS,mmm`` times."""
    blocks = []
    for number, cue in enumerate(_printable(cues), start=1):
        timing = f"{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}"
        blocks.append("\n".join([str(number), timing, *wrap_lines(cue.text)]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def format_vtt(cues: Sequence[Cue]) -> str:
    """Render cues as WebVTT: a ``WEBVTT`` header and ``HH:MM:SS.mmm`` times."""
    blocks = ["WEBVTT"]
    for cue in _printable(cues):
        timing = f"{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}"
        lines = [_vtt_escape(line) for line in wrap_lines(cue.text)]
        blocks.append("\n".join([timing, *lines]))
    return "\n\n".join(blocks) + "\n"


def _words_of(segment: Segment) -> Iterator[Word]:
    words = segment.words or _spread(segment)
    for word in words:
        if word.text.strip():
            yield word


def _spread(segment: Segment) -> tuple[Word, ...]:
    """Words for a segment without timestamps: its time split by text length."""
    tokens = [" " + token for token in _chop(segment.text.split())]
    total_chars = sum(len(token) for token in tokens)
    span_s = max(segment.end_s - segment.start_s, 0.0)
    words: list[Word] = []
    start_s = segment.start_s
    for token in tokens:
        end_s = start_s + span_s * len(token) / total_chars
        words.append(Word(start_s, end_s, token))
        start_s = end_s
    return tuple(words)


def _chop(tokens: list[str]) -> Iterator[str]:
    # Text without spaces (Chinese, Japanese) arrives as one token.
    for token in tokens:
        for begin in range(0, len(token), MAX_LINE_CHARS):
            yield token[begin : begin + MAX_LINE_CHARS]


def _group(words: list[Word]) -> list[list[Word]]:
    """Greedy grouping: grow a cue until the next word breaks a limit, then
    close it at the best break point inside it and carry the rest over."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current and _must_break(current[-1], word):
            groups.append(current)
            current = []
        while current and not _fits([*current, word]):
            keep = _best_break(current, word)
            groups.append(current[:keep])
            current = current[keep:]
        current.append(word)
    if current:
        groups.append(current)
    return groups


def _must_break(last: Word, following: Word) -> bool:
    gap_s = following.start_s - last.end_s
    return gap_s >= LONG_PAUSE_S or (gap_s >= PAUSE_S and _ends_sentence(last))


def _fits(words: list[Word]) -> bool:
    if words[-1].end_s - words[0].start_s > MAX_CUE_S:
        return False
    lines = wrap_lines(_text_of(words))
    return all(len(line) <= MAX_LINE_CHARS for line in lines)


def _best_break(current: list[Word], following: Word) -> int:
    """How many words of ``current`` the cue keeps: the strongest break point,
    the latest among equals, skipping points that would leave a stub."""
    best_keep, best_strength = len(current), 0
    for keep in range(1, len(current) + 1):
        after = current[keep] if keep < len(current) else following
        strength = _break_strength(current[keep - 1], after)
        if strength >= best_strength and _fill(current[:keep]) >= _MIN_FILL:
            best_keep, best_strength = keep, strength
    return best_keep


def _break_strength(last: Word, following: Word) -> int:
    if _ends_sentence(last):
        return 3
    if following.start_s - last.end_s >= PAUSE_S:
        return 2
    if _ends_clause(last):
        return 1
    return 0


def _fill(words: list[Word]) -> float:
    """How much of a cue's room (characters or seconds) these words use."""
    chars = len(_text_of(words)) / (MAX_LINE_CHARS * MAX_LINES)
    seconds = (words[-1].end_s - words[0].start_s) / MAX_CUE_S
    return max(chars, seconds)


def _ends_sentence(word: Word) -> bool:
    return _last_mark(word.text) in _SENTENCE_END


def _ends_clause(word: Word) -> bool:
    return _last_mark(word.text) in _CLAUSE_END


def _last_mark(text: str) -> str:
    """The last character before closing quotes and brackets; "_" for none."""
    return text.strip().rstrip(_CLOSERS)[-1:] or "_"


def _text_of(words: Iterable[Word]) -> str:
    return " ".join("".join(word.text for word in words).split())


def _cue_of(words: list[Word]) -> Cue:
    start_s, end_s = words[0].start_s, words[-1].end_s
    # A lone word Whisper stretched over silence keeps its (reliable) end.
    start_s = max(start_s, end_s - MAX_CUE_S)
    return Cue(start_s, end_s, _text_of(words))


def _settle(cues: list[Cue]) -> list[Cue]:
    """Make every cue last a moment and start no earlier than the last ends."""
    settled: list[Cue] = []
    for cue in cues:
        start_s = max(cue.start_s, 0.0)
        if settled and start_s < settled[-1].end_s:
            previous = settled[-1]
            if start_s - previous.start_s >= MIN_CUE_S:
                settled[-1] = Cue(previous.start_s, start_s, previous.text)
            else:
                start_s = previous.end_s
        end_s = max(cue.end_s, start_s + MIN_CUE_S)
        settled.append(Cue(start_s, end_s, cue.text))
    return settled


def _wrap_cost(pair: tuple[str, str], max_line_chars: int) -> tuple[int, int, bool]:
    """Lower is better: lines within the limit, then the shorter longest line
    (a break after punctuation counts as a few characters shorter), then a
    top line no longer than the bottom one."""
    top, bottom = pair
    longest = max(len(top), len(bottom))
    if longest > max_line_chars:
        return (1, longest, False)
    if _last_mark(top) in _SENTENCE_END + _CLAUSE_END:
        longest -= _PUNCTUATION_BONUS_CHARS
    return (0, longest, len(top) > len(bottom))


def _printable(cues: Sequence[Cue]) -> Iterator[Cue]:
    for cue in cues:
        text = " ".join(cue.text.split())
        if text:
            yield Cue(cue.start_s, cue.end_s, text)


def _timestamp(seconds: float, separator: str) -> str:
    total_ms = max(round(seconds * 1000), 0)
    hours, rest_ms = divmod(total_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    whole_s, millis = divmod(rest_ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole_s:02d}{separator}{millis:03d}"


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
