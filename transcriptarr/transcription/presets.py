"""Quality presets turned into the concrete model and decoding options of a job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from transcriptarr.catalog import DEFAULTS_BY_KEY, parse_value
from transcriptarr.errors import InvalidInput
from transcriptarr.models import QualityPreset

Device = Literal["cpu", "cuda"]

_GPU_COMPUTE_TYPES = {"float16", "int8_float16", "bfloat16", "int8_bfloat16"}


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What the engine loads and how it decodes, for one job.

    ``batch_size`` 0 means faster-whisper's sequential pipeline; more means its
    batched pipeline with that many 30 s windows per batch. The language sample
    says which stretch of speech language detection listens to.
    """

    model_name: str
    compute_type: str
    beam_size: int
    batch_size: int
    vad_filter: bool
    language_sample_offset_s: float = 60.0
    language_sample_length_s: float = 30.0


def resolve_preset(
    preset: QualityPreset | str,
    settings: Mapping[str, Any],
    *,
    device: Device,
) -> ModelChoice:
    """Build the :class:`ModelChoice` of ``preset`` on ``device``.

    Args:
        preset: ``fast``, ``balanced`` or ``best``.
        settings: parsed setting values keyed as in ``transcriptarr.catalog``;
            a missing key takes the catalog's default.
        device: ``cpu`` or ``cuda``.

    Returns:
        The model and decoding options.

    Raises:
        InvalidInput: the preset is unknown or a setting holds a bad value.
    """
    quality = _quality(preset)
    compute_key = f"transcription_compute_type_{'gpu' if device == 'cuda' else 'cpu'}"
    return ModelChoice(
        model_name=_text(settings, f"transcription_model_{quality.value}"),
        compute_type=_compute_type(settings, compute_key, device),
        beam_size=_count(settings, f"transcription_beam_size_{quality.value}", 1),
        batch_size=_count(settings, "transcription_batch_size", 0),
        vad_filter=bool(_setting(settings, "transcription_vad_enabled")),
        language_sample_offset_s=_seconds(
            settings, "transcription_language_sample_offset_s", 0.0
        ),
        language_sample_length_s=_seconds(
            settings, "transcription_language_sample_length_s", 1.0
        ),
    )


def _quality(preset: QualityPreset | str) -> QualityPreset:
    try:
        return QualityPreset(preset)
    except ValueError as exc:
        known = ", ".join(item.value for item in QualityPreset)
        raise InvalidInput(
            f"quality_preset: {preset!r} is not one of {known}",
            field="quality_preset",
        ) from exc


def _setting(settings: Mapping[str, Any], key: str) -> Any:
    """The parsed value of ``key``; text that slipped through unparsed is parsed."""
    default = DEFAULTS_BY_KEY[key]
    value = settings.get(key)
    if value is None:
        return parse_value(default.value, default.value_type, key=key)
    if isinstance(value, str):
        return parse_value(value, default.value_type, key=key)
    return value


def _text(settings: Mapping[str, Any], key: str) -> str:
    value = str(_setting(settings, key)).strip()
    if not value:
        raise InvalidInput(f"{key}: must not be empty", field=key)
    return value


def _count(settings: Mapping[str, Any], key: str, least: int) -> int:
    value = _setting(settings, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidInput(f"{key}: {value!r} is not an integer >= {least}", field=key)
    return value


def _seconds(settings: Mapping[str, Any], key: str, least: float) -> float:
    value = _setting(settings, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < least:
        raise InvalidInput(f"{key}: {value!r} is not a number >= {least}", field=key)
    return float(value)


def _compute_type(settings: Mapping[str, Any], key: str, device: Device) -> str:
    value = _text(settings, key)
    if device == "cpu" and value in _GPU_COMPUTE_TYPES:
        # Half precision has no fast CPU kernels; int8 is what CPUs run well.
        return "int8"
    return value
