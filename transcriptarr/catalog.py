"""The catalog of default settings that every part of the service reads.

Each entry is (key, default value, type, category, description). Values are
stored as text, as the REST API shows them, and parsed by :func:`parse_value`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transcriptarr.errors import InvalidInput
from transcriptarr.models import SettingValueType as T


@dataclass(frozen=True, slots=True)
class SettingDefault:
    key: str
    value: str
    value_type: T
    category: str
    description: str


def _d(key: str, value: str, kind: T, category: str, text: str) -> SettingDefault:
    return SettingDefault(key, value, kind, category, text)


DEFAULTS: tuple[SettingDefault, ...] = (
    # general
    _d("setup_completed", "false", T.BOOLEAN, "general", "Setup wizard finished"),
    _d(
        "operation_mode",
        "standalone",
        T.STRING,
        "general",
        "standalone or bazarr_slave",
    ),
    _d(
        "api_key",
        "",
        T.STRING,
        "general",
        "API key required on every route when set (empty: no key)",
    ),
    _d(
        "cors_origins",
        "",
        T.LIST,
        "general",
        "Origins allowed by CORS, comma-separated (empty: CORS off)",
    ),
    _d(
        "filesystem_roots",
        "/",
        T.LIST,
        "general",
        "Directories the filesystem browser may show, comma-separated",
    ),
    # workers
    _d("worker_cpu_count", "1", T.INTEGER, "workers", "Number of CPU workers"),
    _d("worker_gpu_count", "0", T.INTEGER, "workers", "Number of GPU workers"),
    _d(
        "worker_cpu_threads",
        "1",
        T.INTEGER,
        "workers",
        "CPU cores reserved (and threads used) by each CPU worker",
    ),
    _d(
        "worker_gpu_fraction",
        "0.5",
        T.FLOAT,
        "workers",
        "Fraction of one GPU each GPU worker reserves",
    ),
    _d(
        "worker_gpu_device_ids",
        "0",
        T.LIST,
        "workers",
        "GPU device ids the pool starts GPU workers on, comma-separated",
    ),
    _d(
        "worker_model_idle_unload_s",
        "300",
        T.INTEGER,
        "workers",
        "Seconds a loaded model may stay unused before it is unloaded",
    ),
    _d(
        "worker_progress_interval_s",
        "1.0",
        T.FLOAT,
        "workers",
        "Least seconds between two progress reports of a worker",
    ),
    # transcription
    _d(
        "transcription_model_fast",
        "base",
        T.STRING,
        "transcription",
        "Whisper model of the fast preset",
    ),
    _d(
        "transcription_model_balanced",
        "small",
        T.STRING,
        "transcription",
        "Whisper model of the balanced preset",
    ),
    _d(
        "transcription_model_best",
        "large-v3",
        T.STRING,
        "transcription",
        "Whisper model of the best preset",
    ),
    _d(
        "transcription_compute_type_cpu",
        "int8",
        T.STRING,
        "transcription",
        "CTranslate2 compute type on CPU",
    ),
    _d(
        "transcription_compute_type_gpu",
        "float16",
        T.STRING,
        "transcription",
        "CTranslate2 compute type on GPU",
    ),
    _d(
        "transcription_beam_size_fast",
        "1",
        T.INTEGER,
        "transcription",
        "Beam size of the fast preset",
    ),
    _d(
        "transcription_beam_size_balanced",
        "5",
        T.INTEGER,
        "transcription",
        "Beam size of the balanced preset",
    ),
    _d(
        "transcription_beam_size_best",
        "5",
        T.INTEGER,
        "transcription",
        "Beam size of the best preset",
    ),
    _d(
        "transcription_batch_size",
        "8",
        T.INTEGER,
        "transcription",
        "Batch size of the batched pipeline (0: sequential)",
    ),
    _d(
        "transcription_vad_enabled",
        "true",
        T.BOOLEAN,
        "transcription",
        "Skip non-speech with faster-whisper's VAD",
    ),
    _d(
        "transcription_language_sample_offset_s",
        "60",
        T.INTEGER,
        "transcription",
        "Where the language detection sample starts",
    ),
    _d(
        "transcription_language_sample_length_s",
        "30",
        T.INTEGER,
        "transcription",
        "Length of the language detection sample",
    ),
    # scanner
    _d(
        "library_paths",
        "",
        T.LIST,
        "scanner",
        "Library folders to scan, comma-separated",
    ),
    _d("scanner_enabled", "false", T.BOOLEAN, "scanner", "Run scheduled scans"),
    _d(
        "scanner_cron_expression",
        "",
        T.STRING,
        "scanner",
        "Cron expression of scheduled scans (empty: use the interval)",
    ),
    _d(
        "scanner_interval_minutes",
        "360",
        T.INTEGER,
        "scanner",
        "Minutes between scheduled scans when no cron expression is set",
    ),
    _d(
        "scanner_recursive",
        "true",
        T.BOOLEAN,
        "scanner",
        "Scan library folders recursively",
    ),
    _d(
        "watcher_enabled",
        "false",
        T.BOOLEAN,
        "scanner",
        "Watch library folders for new files",
    ),
    _d(
        "watcher_stable_s",
        "5",
        T.INTEGER,
        "scanner",
        "Seconds a new file's size must stay unchanged before it is checked",
    ),
    _d(
        "media_extensions",
        ".mkv,.mp4,.avi,.m4v,.mov,.webm,.ts,.wmv",
        T.LIST,
        "scanner",
        "File extensions treated as media",
    ),
    # queue
    _d(
        "queue_max_retries",
        "3",
        T.INTEGER,
        "queue",
        "Attempts after the first before a job fails",
    ),
    _d(
        "queue_backoff_base_s",
        "5",
        T.FLOAT,
        "queue",
        "First retry delay; each further retry doubles it",
    ),
    _d("queue_backoff_max_s", "600", T.FLOAT, "queue", "Longest retry delay"),
    _d(
        "queue_lease_s",
        "60",
        T.FLOAT,
        "queue",
        "Seconds a claimed job stays leased without a progress report",
    ),
    # output
    _d("output_format", "srt", T.STRING, "output", "srt or vtt"),
    _d(
        "output_language_style",
        "iso639_1",
        T.STRING,
        "output",
        "Language code in output names: iso639_1 (es) or iso639_2 (spa)",
    ),
    _d(
        "output_overwrite_existing",
        "false",
        T.BOOLEAN,
        "output",
        "Overwrite subtitle files this service did not write",
    ),
    # bazarr
    _d(
        "bazarr_enabled",
        "false",
        T.BOOLEAN,
        "bazarr",
        "Serve Bazarr's Whisper provider routes",
    ),
    _d(
        "bazarr_priority",
        "100",
        T.INTEGER,
        "bazarr",
        "Priority of Bazarr requests (ahead of library work)",
    ),
)

DEFAULTS_BY_KEY = {entry.key: entry for entry in DEFAULTS}

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_value(raw: str, value_type: T, *, key: str = "value") -> Any:
    """Parse a stored text value; a value that does not fit its type is a 400."""
    try:
        match value_type:
            case T.STRING:
                return raw
            case T.INTEGER:
                return int(raw.strip())
            case T.FLOAT:
                return float(raw.strip())
            case T.BOOLEAN:
                lowered = raw.strip().lower()
                if lowered in _TRUE:
                    return True
                if lowered in _FALSE:
                    return False
                raise ValueError(raw)
            case T.LIST:
                return [item.strip() for item in raw.split(",") if item.strip()]
            case T.JSON:
                return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(
            f"{key}: {raw!r} is not a valid {value_type.value}", field=key
        ) from exc
    raise InvalidInput(f"{key}: unknown type {value_type}", field=key)


def normalise_value(raw: str, value_type: T, *, key: str = "value") -> str:
    """Validate ``raw`` against its type and return the text to store."""
    parse_value(raw, value_type, key=key)
    if value_type is T.BOOLEAN:
        return "true" if parse_value(raw, value_type) else "false"
    return raw.strip() if value_type in {T.INTEGER, T.FLOAT} else raw
