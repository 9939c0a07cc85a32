"""Cue building and SRT/VTT output, on hand-made timed words."""

from __future__ import annotations

import itertools
import re

import pytest

from transcriptarr.transcription.cues import (
    Cue,
    Segment,
    Word,
    build_cues,
    format_srt,
    format_vtt,
    wrap_lines,
)

SRT_TIME = r"\d\d:\d\d:\d\d,\d\d\d"
VTT_TIME = r"\d\d:\d\d:\d\d\.\d\d\d"
LOREM = (
    "so we walked along the river until the light began to fade and the "
    "boats came back to the harbour with their nets full of silver fish while "
    "the old men on the pier argued about the price of diesel and the young "
    "ones laughed at them from the café across the square where music played "
    "late into the warm summer night and nobody wanted to go home at all"
)


def timed(text: str, start_s: float = 0.0, word_s: float = 0.3) -> list[Word]:
    """Words spoken back to back, ``word_s`` each, with 50 ms between them."""
    words = []
    for token in text.split():
        words.append(Word(start_s, start_s + word_s, " " + token))
        start_s += word_s + 0.05
    return words


def segment(words: list[Word]) -> Segment:
    text = "".join(word.text for word in words)
    return Segment(words[0].start_s, words[-1].end_s, text, tuple(words))


def parse_srt(text: str) -> list[tuple[int, str, str, list[str]]]:
    blocks = []
    for block in text.rstrip("\n").split("\n\n"):
        number, timing, *lines = block.split("\n")
        start, end = timing.split(" --> ")
        blocks.append((int(number), start, end, lines))
    return blocks


def assert_readable(cues: list[Cue]) -> None:
    for cue in cues:
        assert cue.text.strip()
        assert 0 < cue.end_s - cue.start_s <= 7.0
        lines = wrap_lines(cue.text)
        assert len(lines) <= 2
        assert all(len(line) <= 42 for line in lines)
    for before, after in itertools.pairwise(cues):
        assert before.end_s <= after.start_s


def test_long_speech_becomes_cues_of_at_most_seven_seconds_and_two_short_lines() -> (
    None
):
    words = timed(f"{LOREM} {LOREM}")

    cues = build_cues([segment(words)])

    assert len(cues) >= 7
    assert_readable(cues)


def test_cues_split_between_words_and_keep_every_word_in_order() -> None:
    words = timed(LOREM)

    cues = build_cues([segment(words)])

    assert " ".join(cue.text for cue in cues) == LOREM


def test_a_cue_lasts_from_its_first_word_to_its_last_word() -> None:
    words = timed(LOREM)
    starts = {word.start_s for word in words}
    ends = {word.end_s for word in words}

    cues = build_cues([segment(words)])

    assert all(cue.start_s in starts and cue.end_s in ends for cue in cues)
    assert cues[0].start_s == words[0].start_s
    assert cues[-1].end_s == words[-1].end_s


def test_a_cue_ends_at_the_end_of_a_sentence_rather_than_mid_sentence() -> None:
    text = (
        "The harbour was quiet before the storm arrived that night. "
        "Everyone had tied their boats twice and gone home early."
    )

    cues = build_cues([segment(timed(text))])

    assert [cue.text for cue in cues] == [
        "The harbour was quiet before the storm arrived that night.",
        "Everyone had tied their boats twice and gone home early.",
    ]


def test_without_punctuation_a_cue_ends_at_a_pause_in_the_speech() -> None:
    first = timed("we waited by the gate for a long time until")
    second = timed(
        "somebody finally came out to open it for us and the others",
        start_s=first[-1].end_s + 0.8,
    )

    cues = build_cues([segment(first + second)])

    assert cues[0].text == "we waited by the gate for a long time until"
    assert cues[1].text.startswith("somebody finally")


def test_a_long_silence_always_starts_a_new_cue() -> None:
    first = timed("Hello there")
    second = timed("how are you", start_s=first[-1].end_s + 2.0)

    cues = build_cues([segment(first), segment(second)])

    assert [cue.text for cue in cues] == ["Hello there", "how are you"]
    assert cues[0].end_s == first[-1].end_s


def test_a_whole_thirty_second_segment_is_regrouped_into_short_cues() -> None:
    words = timed(LOREM, word_s=0.4)
    whole = segment(words)
    assert whole.end_s - whole.start_s > 25

    cues = build_cues([whole])

    assert len(cues) >= 5
    assert_readable(cues)


def test_a_segment_without_words_is_split_over_its_time_by_text_length() -> None:
    plain = Segment(10.0, 40.0, " " + LOREM)

    cues = build_cues([plain])

    assert len(cues) >= 5
    assert_readable(cues)
    assert cues[0].start_s == pytest.approx(10.0)
    assert cues[-1].end_s == pytest.approx(40.0)
    assert " ".join(cue.text for cue in cues) == LOREM


def test_overlapping_segments_give_cues_that_do_not_overlap() -> None:
    first = segment(timed("the first voice says something", start_s=0.0))
    second = segment(timed("while a second one answers", start_s=1.0))

    cues = build_cues([first, second])

    assert_readable(cues)


def test_blank_words_and_empty_segments_make_no_cues() -> None:
    blank = Segment(0.0, 1.0, "  ", (Word(0.0, 0.5, " "), Word(0.5, 1.0, "")))

    assert build_cues([]) == []
    assert build_cues([blank, Segment(1.0, 2.0, "")]) == []


def test_words_without_spaces_between_them_are_joined_as_written() -> None:
    words = [Word(0.0, 0.3, "今日"), Word(0.3, 0.6, "は"), Word(0.6, 0.9, "晴れ")]

    assert [cue.text for cue in build_cues([segment(words)])] == ["今日は晴れ"]


def test_srt_numbers_cues_from_one_with_comma_milliseconds_and_blank_lines() -> None:
    cues = [
        Cue(0.0, 2.5, "Hello there."),
        Cue(3725.5, 3727.25, "An hour, two minutes and five seconds in."),
    ]

    text = format_srt(cues)

    assert text == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n01:02:05,500 --> 01:02:07,250\n"
        "An hour, two minutes and five seconds in.\n"
    )


def test_srt_of_built_cues_parses_back_with_wrapped_lines() -> None:
    cues = build_cues([segment(timed(LOREM))])

    blocks = parse_srt(format_srt(cues))

    assert [number for number, *_ in blocks] == list(range(1, len(cues) + 1))
    for _, start, end, lines in blocks:
        assert re.fullmatch(SRT_TIME, start)
        assert re.fullmatch(SRT_TIME, end)
        assert 1 <= len(lines) <= 2
        assert all(0 < len(line) <= 42 for line in lines)
    assert " ".join(" ".join(lines) for *_, lines in blocks) == LOREM


def test_srt_skips_empty_cues_and_keeps_numbering_continuous() -> None:
    cues = [Cue(0.0, 1.0, "one"), Cue(1.0, 2.0, "  "), Cue(2.0, 3.0, "two")]

    numbers = [number for number, *_ in parse_srt(format_srt(cues))]

    assert numbers == [1, 2]
    assert format_srt([]) == ""


def test_vtt_starts_with_its_header_and_uses_dot_milliseconds() -> None:
    cues = [Cue(1.0, 2.0, "Fish & chips <now>")]

    text = format_vtt(cues)

    assert text.startswith("WEBVTT\n\n")
    _, block = text.rstrip("\n").split("\n\n")
    timing, line = block.split("\n")
    assert re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", timing)
    assert timing == "00:00:01.000 --> 00:00:02.000"
    assert line == "Fish &amp; chips &lt;now&gt;"
    assert text.endswith("\n")


def test_long_lines_wrap_at_a_word_boundary_into_two_balanced_lines() -> None:
    text = "The quick brown fox jumps over the lazy dog and runs into the woods"

    lines = wrap_lines(text)

    assert len(lines) == 2
    assert " ".join(lines) == text
    assert abs(len(lines[0]) - len(lines[1])) < 12
    assert wrap_lines("Short line.") == ["Short line."]


def test_a_line_break_after_a_comma_wins_over_a_slightly_better_balance() -> None:
    lines = wrap_lines("I went home early, and then my sister called me")

    assert lines == ["I went home early,", "and then my sister called me"]
