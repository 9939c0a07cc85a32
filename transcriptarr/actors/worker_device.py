"""A worker's engine and device: build the engine, pick the pipeline, read VRAM."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from transcriptarr.actors.worker_types import WorkerSpec, WorkerType
from transcriptarr.transcription.engine import TranscriptionEngine, WhisperEngine
from transcriptarr.transcription.presets import ModelChoice

logger = logging.getLogger(__name__)

BYTES_PER_MIB = 1024 * 1024


def pipeline_choice(choice: ModelChoice, spec: WorkerSpec) -> ModelChoice:
    """Use faster-whisper's sequential pipeline on one-thread CPU workers.

    With one thread the batched pipeline is no faster (see
    ``benchmarks/batched_vs_sequential.py --threads 1``) while its batches of
    30 s windows leave the engine no point to notice a cancel for tens of
    seconds; the sequential pipeline stops after any window.
    """
    if spec.worker_type is WorkerType.CPU and spec.cpu_threads < 2:
        return replace(choice, batch_size=0)
    return choice


def whisper_engine(spec: WorkerSpec) -> TranscriptionEngine:
    """The production engine of a worker."""
    return WhisperEngine(
        device=spec.device,
        device_index=spec.device_index,
        cpu_threads=spec.cpu_threads if spec.device == "cpu" else 0,
        models_dir=spec.models_dir,
    )


def gpu_memory_used_mb(pid: int, device_index: int, nvml: Any = None) -> int | None:
    """MiB of GPU memory that process ``pid`` holds on a device, read by NVML.

    Args:
        pid: The process.
        device_index: The NVML index of the GPU.
        nvml: The ``pynvml`` module, or a fake of it in tests.

    Returns:
        The memory, or None when NVML is missing or does not list the process
        (as inside some containers, whose PIDs NVML does not see).
    """
    nvml = nvml if nvml is not None else _import_nvml()
    if nvml is None:
        return None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
        for process in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            used_bytes = getattr(process, "usedGpuMemory", None)
            if process.pid == pid and used_bytes is not None:
                return int(used_bytes) // BYTES_PER_MIB
    except nvml.NVMLError as exc:
        logger.debug("NVML cannot read GPU memory: %s", exc)
    finally:
        nvml.nvmlShutdown()
    return None


def _import_nvml() -> Any:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml
