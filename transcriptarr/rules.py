"""Scan rules: what a rule says, and which rule a media file matches.

Everything here is pure. The scanner gathers the facts about one file (its
probe, the subtitle files beside it, which of our outputs exist) and
:func:`decide` answers from those facts alone: the first enabled rule, by
priority, whose conditions all hold. When a rule needs the audio language and a
track is untagged, :func:`decide` asks for it (:class:`NeedsLanguage`) instead
of guessing; the scanner detects it and asks again.

What counts as "having subtitles in a language": an embedded text track that is
not forced, an external subtitle file that is neither forced nor pictures, or
the output this service would write. Forced tracks carry only the foreign
parts, and image tracks (PGS, VobSub) cannot be read by most players' search
or by Bazarr, so neither stands in for real subtitles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from transcriptarr.media import languages
from transcriptarr.models import JobCreate, QualityPreset, TaskKind

IMAGE_SUBTITLE_FORMATS = frozenset({"sup", "sub"})
PRIORITY_LIMIT = 1_000_000

Priority = Annotated[int, Field(ge=-PRIORITY_LIMIT, le=PRIORITY_LIMIT)]
RuleName = Annotated[str, Field(min_length=1, max_length=200)]


def _one_language(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    code = languages.to_iso639_2(value)
    if code is None:
        raise ValueError(f"unknown language code {value!r}")
    return code


def _language_list(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    codes = [_one_language(item) for item in value.split(",") if item.strip()]
    return ",".join(dict.fromkeys(code for code in codes if code))


def _extension_list(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    found: list[str] = []
    for item in value.split(","):
        word = item.strip().lower().lstrip(".")
        if not word:
            continue
        if not word.isalnum():
            raise ValueError(f"{item.strip()!r} is not a file extension")
        found.append("." + word)
    return ",".join(dict.fromkeys(found)) or None


def split_list(value: str | None) -> frozenset[str]:
    """The items of a comma-separated condition value."""
    if not value:
        return frozenset()
    return frozenset(item for item in value.split(",") if item)


class RuleConditions(BaseModel):
    """What must hold for a rule to match; None means "no condition".

    Languages are stored as ISO 639-2/T whatever form they came in.
    """

    model_config = ConfigDict(extra="forbid")

    audio_language_is: str | None = None
    audio_language_not: str | None = None
    audio_track_count_min: int | None = Field(default=None, ge=0, le=256)
    has_embedded_subtitle_lang: str | None = None
    missing_embedded_subtitle_lang: str | None = None
    missing_external_subtitle_lang: str | None = None
    file_extension: str | None = None

    @field_validator(
        "audio_language_is",
        "has_embedded_subtitle_lang",
        "missing_embedded_subtitle_lang",
        "missing_external_subtitle_lang",
    )
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return _one_language(value)

    @field_validator("audio_language_not")
    @classmethod
    def _languages(cls, value: str | None) -> str | None:
        return _language_list(value)

    @field_validator("file_extension")
    @classmethod
    def _extensions(cls, value: str | None) -> str | None:
        return _extension_list(value)

    @property
    def needs_audio_language(self) -> bool:
        return bool(self.audio_language_is or self.audio_language_not)


class RuleAction(BaseModel):
    """The job a matching file gets."""

    model_config = ConfigDict(extra="forbid")

    action_type: TaskKind = TaskKind.TRANSCRIBE
    target_language: str
    quality_preset: QualityPreset = QualityPreset.FAST
    job_priority: Priority = 0

    @field_validator("target_language")
    @classmethod
    def _target(cls, value: str) -> str:
        code = _one_language(value)
        if code is None:
            raise ValueError("must name a language")
        return code


class RuleActionUpdate(BaseModel):
    """``action`` of a partial update: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    action_type: TaskKind | None = None
    target_language: str | None = None
    quality_preset: QualityPreset | None = None
    job_priority: Priority | None = None

    @field_validator("target_language")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        return None if value is None else RuleAction._target(value)


class ScanRuleCreate(BaseModel):
    """Body of ``POST /api/scan-rules``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: RuleName
    enabled: bool = True
    priority: Priority = 0
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    action: RuleAction


class ScanRuleUpdate(BaseModel):
    """Body of ``PUT /api/scan-rules/{rule_id}``: any subset of the fields.

    Inside ``conditions`` and ``action`` too, only the fields given change; a
    condition given as null is removed.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: RuleName | None = None
    enabled: bool | None = None
    priority: Priority | None = None
    conditions: RuleConditions | None = None
    action: RuleActionUpdate | None = None

    def apply(self, rule: ScanRuleCreate) -> ScanRuleCreate:
        """``rule`` with this update's fields laid over it."""
        merged = rule.model_dump()
        for key in ("name", "enabled", "priority"):
            value = getattr(self, key)
            if value is not None:
                merged[key] = value
        if self.conditions is not None:
            merged["conditions"].update(
                self.conditions.model_dump(include=self.conditions.model_fields_set)
            )
        if self.action is not None:
            given = self.action.model_dump(exclude_none=True)
            merged["action"].update(given)
        return ScanRuleCreate.model_validate(merged)


class ScanRule(BaseModel):
    """A stored rule, as the REST API shows it."""

    id: int
    name: str
    enabled: bool
    priority: int
    conditions: RuleConditions
    action: RuleAction
    created_at: str
    updated_at: str | None

    def as_create(self) -> ScanRuleCreate:
        return ScanRuleCreate(
            name=self.name,
            enabled=self.enabled,
            priority=self.priority,
            conditions=self.conditions,
            action=self.action,
        )


@dataclass(frozen=True, slots=True)
class SubtitleFact:
    """One subtitle track or file, as far as the rules care."""

    language: str | None
    is_text: bool = True
    forced: bool = False

    @property
    def counts(self) -> bool:
        """Whether it stands for subtitles in its language (module docstring)."""
        return self.language is not None and self.is_text and not self.forced


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """What the rules may ask about one media file.

    Attributes:
        extension: The file extension in lower case, with its dot.
        audio_languages: One ISO 639-2/T code per audio track; None where the
            track is untagged (or detection could not tell).
        default_audio: The track a job transcribes when no language is asked
            for: the default one, else the first.
        embedded_subtitles: The container's subtitle tracks.
        external_subtitles: The subtitle files beside the media.
        outputs: Target languages whose output (our file name) exists.
        is_video: Whether the file has a real video stream.
        languages_detected: The untagged tracks went through detection, so
            None in ``audio_languages`` now means "cannot tell".
    """

    extension: str
    audio_languages: tuple[str | None, ...]
    default_audio: int = 0
    embedded_subtitles: tuple[SubtitleFact, ...] = ()
    external_subtitles: tuple[SubtitleFact, ...] = ()
    outputs: frozenset[str] = frozenset()
    is_video: bool = True
    languages_detected: bool = False

    @property
    def unknown_tracks(self) -> tuple[int, ...]:
        return tuple(i for i, code in enumerate(self.audio_languages) if code is None)

    def with_detected(self, detected: Mapping[int, str | None]) -> MediaFacts:
        """These facts with detected languages filled in for untagged tracks."""
        filled = tuple(
            code if code is not None else detected.get(index)
            for index, code in enumerate(self.audio_languages)
        )
        return dataclasses.replace(
            self, audio_languages=filled, languages_detected=True
        )

    def has_embedded(self, language: str) -> bool:
        return any(s.counts and s.language == language for s in self.embedded_subtitles)

    def has_external(self, language: str) -> bool:
        """An external subtitle file, or our own output, in ``language``."""
        if language in self.outputs:
            return True
        return any(s.counts and s.language == language for s in self.external_subtitles)


def facts_from_probe(
    path: Path,
    probe: Mapping[str, Any],
    external: Iterable[Mapping[str, Any]],
    outputs: Iterable[str] = (),
) -> MediaFacts:
    """Build :class:`MediaFacts` from a probe and the subtitle files found.

    Args:
        path: The media file.
        probe: ``MediaInfo.to_dict()`` (the ``analyze`` shape).
        external: ``ExternalSubtitle.to_dict()`` of each file beside it.
        outputs: Target languages whose output file exists.
    """
    tracks = probe.get("audio_tracks") or []
    defaults = [position for position, t in enumerate(tracks) if t.get("default")]
    return MediaFacts(
        extension=path.suffix.lower(),
        audio_languages=tuple(t.get("language") for t in tracks),
        default_audio=defaults[0] if defaults else 0,
        embedded_subtitles=tuple(
            _subtitle(s, bool(s.get("is_text")))
            for s in probe.get("embedded_subtitles") or []
        ),
        external_subtitles=tuple(
            _subtitle(s, s.get("format") not in IMAGE_SUBTITLE_FORMATS)
            for s in external
        ),
        outputs=frozenset(outputs),
        is_video=bool(probe.get("is_video")),
    )


def _subtitle(entry: Mapping[str, Any], is_text: bool) -> SubtitleFact:
    return SubtitleFact(entry.get("language"), is_text, bool(entry.get("forced")))


@dataclass(frozen=True, slots=True)
class Match:
    """The rule a file matched, and the audio language its job starts from."""

    rule: ScanRule
    source_lang: str | None

    def job(self, path: Path) -> JobCreate:
        """The job this match asks for."""
        action = self.rule.action
        return JobCreate(
            file_path=str(path),
            file_name=path.name,
            source_lang=self.source_lang,
            target_lang=action.target_language,
            quality_preset=action.quality_preset,
            transcribe_or_translate=action.action_type,
            priority=action.job_priority,
            is_manual_request=False,
        )


@dataclass(frozen=True, slots=True)
class NeedsLanguage:
    """A rule cannot be decided until these audio tracks' languages are known."""

    track_indexes: tuple[int, ...]


Decision = Match | NeedsLanguage | None


def in_order(rules: Iterable[ScanRule]) -> list[ScanRule]:
    """Enabled rules in the order they are tried: priority, then age."""
    return sorted((r for r in rules if r.enabled), key=lambda r: (-r.priority, r.id))


def target_languages(rules: Iterable[ScanRule]) -> frozenset[str]:
    """Every target language the enabled rules may ask for."""
    return frozenset(r.action.target_language for r in rules if r.enabled)


def decide(rules: Sequence[ScanRule], facts: MediaFacts) -> Decision:
    """The first rule, by priority, that ``facts`` satisfy.

    Returns:
        A :class:`Match`; :class:`NeedsLanguage` when the next rule to try
        depends on the language of an untagged track; None when no rule
        matches. A file without audio or without video matches nothing.
    """
    if not facts.audio_languages or not facts.is_video:
        return None
    for rule in in_order(rules):
        if not _holds_without_audio_language(rule, facts):
            continue
        verdict = _audio_language_verdict(rule.conditions, facts)
        if verdict is None:
            return NeedsLanguage(facts.unknown_tracks)
        if verdict:
            return Match(rule, _source_language(rule.conditions, facts))
    return None


def _holds_without_audio_language(rule: ScanRule, facts: MediaFacts) -> bool:
    conditions = rule.conditions
    if rule.action.target_language in facts.outputs:
        return False
    extensions = split_list(conditions.file_extension)
    if extensions and facts.extension not in extensions:
        return False
    minimum = conditions.audio_track_count_min
    if minimum is not None and len(facts.audio_languages) < minimum:
        return False
    wanted = conditions.has_embedded_subtitle_lang
    if wanted is not None and not facts.has_embedded(wanted):
        return False
    missing = conditions.missing_embedded_subtitle_lang
    if missing is not None and facts.has_embedded(missing):
        return False
    missing = conditions.missing_external_subtitle_lang
    return missing is None or not facts.has_external(missing)


def _audio_language_verdict(
    conditions: RuleConditions, facts: MediaFacts
) -> bool | None:
    """Whether the audio-language conditions hold; None when it needs detection.

    A condition that the tagged tracks already settle is decided without
    detection: English audio fails "not English" whatever the other tracks
    say.
    """
    known = {code for code in facts.audio_languages if code is not None}
    undecided = bool(facts.unknown_tracks) and not facts.languages_detected
    wanted = conditions.audio_language_is
    if wanted is not None and wanted not in known:
        return None if undecided else False
    excluded = split_list(conditions.audio_language_not)
    if excluded:
        if known & excluded:
            return False
        if undecided:
            return None
        if not known:
            return False
    return True


def _source_language(conditions: RuleConditions, facts: MediaFacts) -> str | None:
    if conditions.audio_language_is is not None:
        return conditions.audio_language_is
    return facts.audio_languages[facts.default_audio]
