"""The rule engine, on facts written by hand: no files, no database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from transcriptarr.models import QualityPreset, TaskKind
from transcriptarr.rules import (
    Match,
    MediaFacts,
    NeedsLanguage,
    RuleConditions,
    ScanRule,
    ScanRuleCreate,
    ScanRuleUpdate,
    SubtitleFact,
    decide,
    facts_from_probe,
)


def rule(
    rule_id: int = 1,
    *,
    priority: int = 0,
    enabled: bool = True,
    target: str = "spa",
    **conditions: Any,
) -> ScanRule:
    return ScanRule.model_validate(
        {
            "id": rule_id,
            "name": f"rule {rule_id}",
            "enabled": enabled,
            "priority": priority,
            "conditions": conditions,
            "action": {"target_language": target},
            "created_at": "2025-01-12T10:00:00",
            "updated_at": None,
        }
    )


def facts(*audio: str | None, **fields: Any) -> MediaFacts:
    return MediaFacts(
        extension=fields.pop("extension", ".mkv"), audio_languages=audio, **fields
    )


def matched(decision: object) -> ScanRule:
    assert isinstance(decision, Match)
    return decision.rule


def error_field(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return ".".join(str(part) for part in exc.value.errors()[0]["loc"])


# Validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [("ja", "jpn"), ("jpn", "jpn"), ("ger", "deu"), ("deu", "deu"), ("fre", "fra")],
)
def test_condition_languages_are_stored_as_iso_639_2_t(given: str, stored: str) -> None:
    conditions = RuleConditions(
        audio_language_is=given, missing_external_subtitle_lang=given
    )
    assert conditions.audio_language_is == stored
    assert conditions.missing_external_subtitle_lang == stored


def test_excluded_audio_languages_are_normalised_and_deduplicated() -> None:
    conditions = RuleConditions(audio_language_not="en, eng ,ger")
    assert conditions.audio_language_not == "eng,deu"


def test_file_extensions_are_normalised_to_lower_case_with_a_dot() -> None:
    conditions = RuleConditions(file_extension="MKV, .mp4,,.Mkv")
    assert conditions.file_extension == ".mkv,.mp4"


def test_empty_condition_means_no_condition() -> None:
    conditions = RuleConditions(audio_language_is="", file_extension=" ")
    assert conditions.audio_language_is is None
    assert conditions.file_extension is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"conditions": {"audio_language_is": "klingonese"}},
            "conditions.audio_language_is",
        ),
        (
            {"conditions": {"audio_language_not": "eng,zz9"}},
            "conditions.audio_language_not",
        ),
        ({"conditions": {"file_extension": ".mk v"}}, "conditions.file_extension"),
        (
            {"conditions": {"audio_track_count_min": -1}},
            "conditions.audio_track_count_min",
        ),
        ({"conditions": {"unknown_condition": "x"}}, "conditions.unknown_condition"),
        ({"action": {"target_language": "nope"}}, "action.target_language"),
        (
            {"action": {"target_language": "spa", "action_type": "dub"}},
            "action.action_type",
        ),
        (
            {"action": {"target_language": "spa", "quality_preset": "ultra"}},
            "action.quality_preset",
        ),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_rule_body_names_the_field(body: dict[str, Any], field: str) -> None:
    data: dict[str, Any] = {"name": "r", "action": {"target_language": "spa"}}
    for key, value in body.items():
        data[key] = (
            value if not isinstance(value, dict) else {**data.get(key, {}), **value}
        )
    with pytest.raises(ValidationError) as raised:
        ScanRuleCreate.model_validate(data)
    assert error_field(raised) == field


def test_action_defaults_follow_the_spec() -> None:
    created = ScanRuleCreate.model_validate(
        {"name": "r", "action": {"target_language": "es"}}
    )
    assert created.enabled is True
    assert created.priority == 0
    assert created.action.action_type is TaskKind.TRANSCRIBE
    assert created.action.quality_preset is QualityPreset.FAST
    assert created.action.target_language == "spa"
    assert created.action.job_priority == 0


def test_partial_update_changes_only_the_fields_given() -> None:
    base = ScanRuleCreate.model_validate(
        {
            "name": "r",
            "priority": 3,
            "conditions": {"audio_language_is": "jpn", "file_extension": ".mkv"},
            "action": {"target_language": "spa", "job_priority": 7},
        }
    )
    update = ScanRuleUpdate.model_validate(
        {"conditions": {"file_extension": None}, "action": {"quality_preset": "best"}}
    )
    merged = update.apply(base)
    assert merged.name == "r"
    assert merged.priority == 3
    assert merged.conditions.audio_language_is == "jpn"
    assert merged.conditions.file_extension is None
    assert merged.action.quality_preset is QualityPreset.BEST
    assert merged.action.job_priority == 7
    assert merged.action.target_language == "spa"


# Deciding -------------------------------------------------------------------


def test_every_condition_must_hold() -> None:
    strict = rule(
        audio_language_is="jpn",
        missing_external_subtitle_lang="spa",
        file_extension=".mkv",
    )
    assert decide([strict], facts("jpn")) is not None
    assert decide([strict], facts("jpn", extension=".mp4")) is None
    external = (SubtitleFact("spa"),)
    assert decide([strict], facts("jpn", external_subtitles=external)) is None
    assert decide([strict], facts("eng")) is None


def test_highest_priority_rule_is_tried_first_and_first_match_wins() -> None:
    low = rule(1, priority=1, target="eng")
    high = rule(2, priority=9, target="spa")
    middle = rule(3, priority=5, target="fra", audio_language_is="deu")
    assert matched(decide([low, high, middle], facts("jpn"))) == high


def test_rules_of_equal_priority_are_tried_oldest_first() -> None:
    older, newer = rule(1, target="eng"), rule(2, target="spa")
    assert matched(decide([newer, older], facts("jpn"))) == older


def test_disabled_rule_is_never_matched() -> None:
    assert decide([rule(enabled=False)], facts("jpn")) is None


def test_forced_embedded_track_does_not_count_as_subtitles() -> None:
    wanting = rule(missing_embedded_subtitle_lang="spa")
    forced = (SubtitleFact("spa", is_text=True, forced=True),)
    assert decide([wanting], facts("jpn", embedded_subtitles=forced)) is not None
    having = rule(has_embedded_subtitle_lang="spa")
    assert decide([having], facts("jpn", embedded_subtitles=forced)) is None


def test_picture_embedded_track_does_not_count_as_subtitles() -> None:
    wanting = rule(missing_embedded_subtitle_lang="spa")
    picture = (SubtitleFact("spa", is_text=False),)
    assert decide([wanting], facts("jpn", embedded_subtitles=picture)) is not None


def test_text_embedded_track_counts_as_subtitles() -> None:
    wanting = rule(missing_embedded_subtitle_lang="spa")
    text = (SubtitleFact("spa"),)
    assert decide([wanting], facts("jpn", embedded_subtitles=text)) is None
    assert decide(
        [rule(has_embedded_subtitle_lang="spa")], facts("jpn", embedded_subtitles=text)
    )


def test_external_file_counts_unless_forced_or_pictures() -> None:
    wanting = rule(missing_external_subtitle_lang="spa")
    assert (
        decide([wanting], facts("jpn", external_subtitles=(SubtitleFact("spa"),)))
        is None
    )
    forced = (SubtitleFact("spa", forced=True),)
    assert decide([wanting], facts("jpn", external_subtitles=forced)) is not None
    unnamed = (SubtitleFact(None),)
    assert decide([wanting], facts("jpn", external_subtitles=unnamed)) is not None


def test_external_picture_subtitles_come_from_their_format() -> None:
    probe = {"audio_tracks": [{"language": "jpn"}], "is_video": True}
    external = [
        {"language": "spa", "forced": False, "format": "sup"},
        {"language": "eng", "forced": False, "format": "srt"},
    ]
    built = facts_from_probe(Path("/m/a.mkv"), probe, external)
    assert not built.has_external("spa")
    assert built.has_external("eng")


def test_our_output_counts_as_external_subtitles() -> None:
    wanting = rule(missing_external_subtitle_lang="fra", target="eng")
    assert decide([wanting], facts("jpn", outputs=frozenset({"fra"}))) is None


def test_rule_whose_output_already_exists_does_not_match() -> None:
    first = rule(1, priority=5, target="spa")
    second = rule(2, priority=1, target="eng")
    done = facts("jpn", outputs=frozenset({"spa"}))
    assert matched(decide([first, second], done)) == second


def test_untagged_audio_asks_for_detection_before_a_rule_needing_it() -> None:
    needing = rule(audio_language_is="jpn")
    decision = decide([needing], facts("eng", None))
    assert decision == NeedsLanguage((1,))


def test_rules_not_needing_the_audio_language_decide_without_detection() -> None:
    decision = decide([rule(target="eng")], facts(None))
    assert isinstance(decision, Match)
    assert decision.source_lang is None


def test_tagged_tracks_that_settle_a_condition_need_no_detection() -> None:
    not_english = rule(audio_language_not="eng")
    assert decide([not_english], facts("eng", None)) is None
    japanese = rule(audio_language_is="jpn")
    assert isinstance(decide([japanese], facts("jpn", None)), Match)


def test_higher_rule_needing_detection_is_decided_before_a_lower_one() -> None:
    high = rule(1, priority=9, audio_language_is="jpn")
    low = rule(2, priority=1, target="eng")
    assert isinstance(decide([high, low], facts(None)), NeedsLanguage)


def test_detected_language_decides_the_rule() -> None:
    japanese = rule(audio_language_is="jpn")
    untagged = facts(None)
    assert isinstance(decide([japanese], untagged.with_detected({0: "jpn"})), Match)
    assert decide([japanese], untagged.with_detected({0: "eng"})) is None


def test_language_detection_cannot_tell_means_no_audio_condition_holds() -> None:
    unknown = facts(None).with_detected({0: None})
    assert decide([rule(audio_language_is="jpn")], unknown) is None
    assert decide([rule(audio_language_not="eng")], unknown) is None


def test_audio_language_is_matches_any_track_and_becomes_the_source() -> None:
    decision = decide([rule(audio_language_is="spa")], facts("eng", "spa"))
    assert isinstance(decision, Match)
    assert decision.source_lang == "spa"


def test_audio_language_not_excludes_a_file_with_any_such_track() -> None:
    excluding = rule(audio_language_not="eng,deu")
    assert decide([excluding], facts("jpn", "deu")) is None
    assert decide([excluding], facts("jpn", "fra")) is not None


def test_audio_track_count_min_counts_every_track() -> None:
    two = rule(audio_track_count_min=2)
    assert decide([two], facts("jpn")) is None
    assert decide([two], facts("jpn", None)) is not None


def test_source_language_is_the_default_track_without_an_audio_condition() -> None:
    decision = decide([rule()], facts("eng", "jpn", default_audio=1))
    assert isinstance(decision, Match)
    assert decision.source_lang == "jpn"


def test_file_without_audio_or_video_matches_nothing() -> None:
    assert decide([rule()], facts()) is None
    assert decide([rule()], facts("eng", is_video=False)) is None


def test_match_builds_the_job_the_action_asks_for() -> None:
    action_rule = ScanRule.model_validate(
        {
            "id": 4,
            "name": "r",
            "enabled": True,
            "priority": 0,
            "conditions": {},
            "action": {
                "action_type": "translate",
                "target_language": "eng",
                "quality_preset": "balanced",
                "job_priority": 7,
            },
            "created_at": "2025-01-12T10:00:00",
            "updated_at": None,
        }
    )
    job = Match(action_rule, "jpn").job(Path("/media/anime/ep 1.mkv"))
    assert job.file_path == "/media/anime/ep 1.mkv"
    assert job.file_name == "ep 1.mkv"
    assert job.source_lang == "jpn"
    assert job.target_lang == "eng"
    assert job.transcribe_or_translate is TaskKind.TRANSLATE
    assert job.quality_preset is QualityPreset.BALANCED
    assert job.priority == 7
    assert job.is_manual_request is False


def test_facts_from_probe_pick_the_default_track_and_subtitle_kinds() -> None:
    probe = {
        "audio_tracks": [
            {"language": "eng", "default": False},
            {"language": None, "default": True},
        ],
        "embedded_subtitles": [
            {"language": "spa", "is_text": False, "forced": False},
            {"language": "fra", "is_text": True, "forced": True},
        ],
        "is_video": True,
    }
    built = facts_from_probe(Path("/m/A.MKV"), probe, [], ["spa"])
    assert built.extension == ".mkv"
    assert built.audio_languages == ("eng", None)
    assert built.default_audio == 1
    assert built.unknown_tracks == (1,)
    assert not built.has_embedded("spa")
    assert not built.has_embedded("fra")
    assert built.has_external("spa")
