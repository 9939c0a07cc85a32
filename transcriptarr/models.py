"""Pydantic models for REST bodies and persisted rows; enums for states."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from transcriptarr.errors import InvalidInput
from transcriptarr.media import languages


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.PROCESSING})


class QualityPreset(enum.StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    BEST = "best"


class TaskKind(enum.StrEnum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class JobStage(enum.StrEnum):
    LOADING_MODEL = "loading_model"
    EXTRACTING_AUDIO = "extracting_audio"
    TRANSCRIBING = "transcribing"
    TRANSLATING = "translating"
    FINALIZING = "finalizing"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC without offset, as the spec's examples show."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


class StrictBody(BaseModel):
    """Base of request bodies: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


_M = TypeVar("_M", bound=BaseModel)


def invalid_input(exc: ValidationError) -> InvalidInput:
    """The first error of ``exc`` as a 400 naming its field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return InvalidInput(f"{field}: {first['msg']}", field=field)


def validated(model: type[_M], body: BaseModel | dict[str, Any] | None) -> _M:
    """``body`` as ``model``; a bad value is a 400 naming the field."""
    if isinstance(body, model):
        return body
    data = body.model_dump() if isinstance(body, BaseModel) else body or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


NonEmptyStr = Annotated[str, Field(min_length=1, max_length=4096)]


class JobCreate(StrictBody):
    """Body of ``POST /api/jobs``."""

    file_path: NonEmptyStr
    file_name: NonEmptyStr
    source_lang: str | None = None
    target_lang: str
    quality_preset: QualityPreset = QualityPreset.FAST
    transcribe_or_translate: TaskKind = TaskKind.TRANSCRIBE
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    is_manual_request: bool = True

    @field_validator("source_lang")
    @classmethod
    def _source_lang(cls, value: str | None) -> str | None:
        if value is None or value.strip() in {"", "und", "auto"}:
            return None
        return languages.normalise(value, field="source_lang")

    @field_validator("target_lang")
    @classmethod
    def _target_lang(cls, value: str) -> str:
        return languages.normalise(value, field="target_lang")

    @field_validator("file_path")
    @classmethod
    def _file_path(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL bytes")
        return value


class Job(BaseModel):
    """A job as the REST API shows it."""

    id: str
    file_path: str
    file_name: str
    job_type: str = "transcription"
    status: JobStatus
    priority: int
    source_lang: str | None
    target_lang: str
    quality_preset: QualityPreset
    transcribe_or_translate: TaskKind
    progress: float
    current_stage: JobStage | None
    eta_seconds: int | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    output_path: str | None
    segments_count: int | None
    error: str | None
    retry_count: int
    worker_id: str | None
    vram_used_mb: int | None
    processing_time_seconds: float | None
    model_used: str | None
    device_used: str | None


class JobPage(BaseModel):
    jobs: list[Job]
    total: int
    page: int
    page_size: int


class QueueStats(BaseModel):
    total_jobs: int
    queued: int
    processing: int
    completed: int
    failed: int
    cancelled: int


class Message(BaseModel):
    message: str


class ErrorBody(BaseModel):
    detail: str
    field: str | None = None


class ClaimedJob(BaseModel):
    """What a worker receives from a claim: the job and its lease."""

    job: Job
    lease_id: str
    lease_expires_at: float
    is_manual_request: bool


class JobResult(BaseModel):
    """What a worker reports when a job is done."""

    output_path: str | None
    segments_count: int
    source_lang: str | None = None
    model_used: str | None = None
    device_used: str | None = None
    vram_used_mb: int | None = None
    processing_time_seconds: float | None = None
    note: str | None = None


class ProgressReport(BaseModel):
    stage: JobStage
    progress: float = Field(ge=0, le=100)
    eta_seconds: int | None = None


class SettingValueType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    LIST = "list"
    JSON = "json"


class Setting(BaseModel):
    id: int
    key: str
    value: str
    description: str | None
    category: str
    value_type: SettingValueType
    created_at: str
    updated_at: str | None


class SettingCreate(StrictBody):
    key: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z0-9_.]+$")]
    value: str
    description: str | None = None
    category: Annotated[str, Field(min_length=1, max_length=64)] = "general"
    value_type: SettingValueType = SettingValueType.STRING


class SettingUpdate(StrictBody):
    value: str


class SettingsBulkUpdate(StrictBody):
    settings: dict[str, str]


def dump(model: BaseModel | list[Any]) -> Any:
    """A model (or list of them) as JSON-ready Python data."""
    if isinstance(model, list):
        return [dump(item) for item in model]
    return model.model_dump(mode="json")


class WorkersSummary(BaseModel):
    """The ``workers`` part of ``/api/status``."""

    total_workers: int = 0
    cpu_workers: int = 0
    gpu_workers: int = 0
    idle_workers: int = 0
    busy_workers: int = 0
    total_jobs_completed: int = 0
    total_jobs_failed: int = 0


class ScannerSummary(BaseModel):
    """The ``scanner`` part of ``/api/status``."""

    scheduler_enabled: bool = False
    scheduler_running: bool = False
    next_scan_time: str | None = None
    watcher_enabled: bool = False
    watcher_running: bool = False


class SystemSummary(BaseModel):
    status: str
    uptime_seconds: float


class StatusReport(BaseModel):
    system: SystemSummary
    workers: WorkersSummary
    queue: QueueStats
    scanner: ScannerSummary


class Health(BaseModel):
    status: str
    database: str
    ray: str
    workers: int
    queue_size: int


class RootInfo(BaseModel):
    name: str
    version: str
    status: str
    message: str
