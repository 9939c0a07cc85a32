"""The models a worker has loaded, kept until they sit idle too long.

Models are keyed by model, compute type and device. A model a job is using is
never unloaded; a GPU failure drops them all, since the CUDA context that
holds them is no longer trusted.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faster_whisper import WhisperModel

from transcriptarr.errors import ModelUnavailable
from transcriptarr.transcription import catalog
from transcriptarr.transcription.failures import DeviceFailure, translate_error
from transcriptarr.transcription.presets import Device, ModelChoice

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class ModelKey:
    """What identifies a loaded model."""

    model_name: str
    compute_type: str
    device: str
    device_index: int


@dataclass(slots=True)
class LoadedModel:
    """A model in memory, its batched pipeline once built, and its users."""

    model: Any
    last_used_s: float
    batched: Any | None = None
    in_use: int = field(default=0)


class ModelCache:
    """The loaded models of one device, safe to share between threads.

    Args:
        device: ``cpu`` or ``cuda``.
        device_index: the GPU to use on ``cuda``.
        cpu_threads: threads CTranslate2 uses on CPU (0: its default).
        models_dir: the models cache :func:`catalog.resolve_model` uses.
        clock: monotonic seconds, for idle unloading.
    """

    def __init__(
        self,
        *,
        device: Device,
        device_index: int,
        cpu_threads: int,
        models_dir: Path,
        clock: Callable[[], float],
    ) -> None:
        self.device: Device = device
        self.device_index = device_index
        self.cpu_threads = cpu_threads
        self.models_dir = models_dir
        self._clock = clock
        self._models: dict[ModelKey, LoadedModel] = {}
        self._lock = threading.Lock()

    @property
    def device_name(self) -> str:
        """``cpu`` or ``cuda:<index>``, as jobs report it."""
        return "cpu" if self.device == "cpu" else f"cuda:{self.device_index}"

    def keys(self) -> list[ModelKey]:
        """The models held in memory, in key order."""
        with self._lock:
            return sorted(self._models)

    def unload_idle(
        self, max_idle_s: float, now: float | None = None
    ) -> list[ModelKey]:
        """Drop the models not used for ``max_idle_s`` seconds.

        Args:
            max_idle_s: the longest a model may sit unused.
            now: the clock's current reading (default: read it).

        Returns:
            The keys of the models that were unloaded.
        """
        now_s = self._clock() if now is None else now
        with self._lock:
            idle = [
                key
                for key, loaded in self._models.items()
                if loaded.in_use == 0 and now_s - loaded.last_used_s >= max_idle_s
            ]
            for key in idle:
                del self._models[key]
        if idle:
            gc.collect()
            logger.info(
                "Unloaded idle models: %s", ", ".join(k.model_name for k in idle)
            )
        return idle

    @contextmanager
    def borrow(self, choice: ModelChoice) -> Iterator[LoadedModel]:
        """The loaded model of ``choice``, safe from unloading while in use.

        Raises:
            ModelUnavailable: the model's files cannot be found or loaded.
            DeviceFailure: the GPU failed while loading or using the model.
        """
        key = ModelKey(
            choice.model_name, choice.compute_type, self.device, self.device_index
        )
        with self._lock:
            loaded = self._models.get(key)
        if loaded is None:
            loaded = self._load(key)
        with self._lock:
            loaded.in_use += 1
        try:
            yield loaded
        except DeviceFailure:
            self._drop_all()
            raise
        finally:
            with self._lock:
                loaded.in_use -= 1
                loaded.last_used_s = self._clock()

    def _load(self, key: ModelKey) -> LoadedModel:
        path = catalog.resolve_model(key.model_name, self.models_dir)
        started_s = time.perf_counter()
        try:
            model = WhisperModel(
                str(path),
                device=key.device,
                device_index=key.device_index,
                compute_type=key.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=True,
            )
        except Exception as exc:
            context = f"Cannot load model {key.model_name} ({key.compute_type})"
            raise translate_error(exc, context, self.device, ModelUnavailable) from exc
        logger.info(
            "Loaded model %s (%s) on %s in %.1f s",
            key.model_name,
            key.compute_type,
            self.device_name,
            time.perf_counter() - started_s,
        )
        with self._lock:
            # Another thread may have loaded it meanwhile; keep one copy.
            return self._models.setdefault(key, LoadedModel(model, self._clock()))

    def _drop_all(self) -> None:
        with self._lock:
            self._models.clear()
        gc.collect()
