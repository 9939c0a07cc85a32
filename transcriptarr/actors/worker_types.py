"""What a worker is and how it reports itself: its spec, type, state and status.

The pool builds workers from a :class:`WorkerSpec`; ``GET /api/workers`` lists
them as :class:`WorkerStatus`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from transcriptarr.transcription.presets import Device


class WorkerType(enum.StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class WorkerState(enum.StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"


class WorkerStatus(BaseModel):
    """One worker as ``GET /api/workers`` lists it."""

    worker_id: str
    worker_type: WorkerType
    device_id: int | None
    status: WorkerState
    current_job_id: str | None
    jobs_completed: int
    jobs_failed: int
    uptime_seconds: float
    current_job_progress: float | None
    current_job_eta: int | None


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker is: its id, its device and what it reserves."""

    worker_id: str
    worker_type: WorkerType
    device_id: int | None = None
    cpu_threads: int = 1
    gpu_fraction: float = 0.5
    models_dir: Path = Path("models")

    @property
    def device(self) -> Device:
        return "cuda" if self.worker_type is WorkerType.GPU else "cpu"

    @property
    def device_index(self) -> int:
        return self.device_id or 0

    @property
    def device_name(self) -> str:
        """``cpu`` or ``cuda:<device id>``, as job records show it."""
        if self.worker_type is WorkerType.CPU:
            return "cpu"
        return f"cuda:{self.device_index}"
