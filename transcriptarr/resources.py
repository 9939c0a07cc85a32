"""CPU, memory and GPU readings for the System Resources API.

psutil reads the CPU and memory; NVML (the ``nvidia-ml-py`` package, imported as
``pynvml``) reads the GPUs. A machine without the NVML library, without a driver
or without a GPU has no GPUs: every NVML failure becomes an empty list, never an
error. All calls here block (``/proc`` and ``/sys`` reads, driver calls), so the
routes run them in a thread.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any, Protocol

import psutil
from pydantic import BaseModel

from transcriptarr.errors import NotFound

logger = logging.getLogger(__name__)

BYTES_PER_GIB = 1024**3
BYTES_PER_MIB = 1024**2


class CpuInfo(BaseModel):
    usage_percent: float
    count_logical: int
    count_physical: int | None
    frequency_mhz: float | None


class MemoryInfo(BaseModel):
    total_gb: float
    used_gb: float
    free_gb: float
    usage_percent: float


class GpuInfo(BaseModel):
    id: int
    name: str
    memory_total_mb: int
    memory_used_mb: int
    memory_free_mb: int
    utilization_percent: int


class SystemResources(BaseModel):
    cpu: CpuInfo
    memory: MemoryInfo
    gpus: list[GpuInfo]


class Nvml(Protocol):
    """The part of the ``pynvml`` module this module calls.

    Tests pass a fake with these methods: a GPU cannot run on every machine.
    """

    NVMLError: type[Exception]

    def nvmlInit(self) -> None: ...

    def nvmlShutdown(self) -> None: ...

    def nvmlDeviceGetCount(self) -> int: ...

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...

    def nvmlDeviceGetName(self, handle: Any) -> str | bytes: ...

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any: ...

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any: ...


def _import_nvml() -> Nvml | None:
    try:
        import pynvml
    except ImportError:
        return None
    nvml: Nvml = pynvml
    return nvml


class GpuMonitor:
    """GPU readings through NVML, initialised once and lazily.

    Args:
        nvml: The NVML binding; the ``pynvml`` module when omitted.
    """

    def __init__(self, nvml: Nvml | None = None) -> None:
        self._nvml = nvml if nvml is not None else _import_nvml()
        self._lock = threading.Lock()
        self._initialised = False
        self._unavailable = self._nvml is None
        self._shutdown_registered = False

    def gpus(self) -> list[GpuInfo]:
        """Every GPU NVML can read; empty without NVML, driver or GPU."""
        nvml = self._ready()
        if nvml is None:
            return []
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            logger.warning("NVML could not count GPUs: %s", exc)
            return []
        found = (self._read(nvml, index) for index in range(count))
        return [gpu for gpu in found if gpu is not None]

    def gpu(self, device_id: int) -> GpuInfo:
        """One GPU by its NVML index.

        Raises:
            NotFound: No readable GPU has that index.
        """
        nvml = self._ready()
        gpu = None if nvml is None else self._read(nvml, device_id)
        if gpu is None:
            raise NotFound(f"GPU {device_id} not found")
        return gpu

    def shutdown(self) -> None:
        """Release NVML if it was initialised; safe to call twice."""
        with self._lock:
            if not self._initialised or self._nvml is None:
                return
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                logger.warning("NVML shutdown failed: %s", exc)

    def _ready(self) -> Nvml | None:
        with self._lock:
            if self._unavailable or self._nvml is None:
                return None
            if not self._initialised:
                self._initialised = self._init(self._nvml)
                self._unavailable = not self._initialised
            return self._nvml if self._initialised else None

    def _init(self, nvml: Nvml) -> bool:
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            logger.info("No GPUs: NVML is not available (%s)", exc)
            return False
        if not self._shutdown_registered:
            atexit.register(self.shutdown)
            self._shutdown_registered = True
        return True

    def _read(self, nvml: Nvml, index: int) -> GpuInfo | None:
        if index < 0:
            return None
        try:
            return _gpu_info(nvml, index)
        except nvml.NVMLError as exc:
            logger.debug("NVML could not read GPU %d: %s", index, exc)
            return None


def _gpu_info(nvml: Nvml, index: int) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = nvml.nvmlDeviceGetName(handle)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="replace")
    return GpuInfo(
        id=index,
        name=name,
        memory_total_mb=int(memory.total) // BYTES_PER_MIB,
        memory_used_mb=int(memory.used) // BYTES_PER_MIB,
        memory_free_mb=int(memory.free) // BYTES_PER_MIB,
        utilization_percent=int(utilization.gpu),
    )


class ResourceMonitor:
    """CPU and memory through psutil, GPUs through a :class:`GpuMonitor`.

    Args:
        gpu_monitor: Where GPU readings come from; NVML when omitted.
    """

    def __init__(self, gpu_monitor: GpuMonitor | None = None) -> None:
        self.gpu_monitor = gpu_monitor or GpuMonitor()
        self._cpu_lock = threading.Lock()
        # cpu_percent(interval=None) measures since the previous call; this
        # first call sets the start so the first reading means something.
        psutil.cpu_percent(interval=None)

    def cpu(self) -> CpuInfo:
        """CPU use since the previous reading, core counts and frequency."""
        with self._cpu_lock:
            usage_percent = psutil.cpu_percent(interval=None)
        frequency = psutil.cpu_freq()
        return CpuInfo(
            usage_percent=round(usage_percent, 1),
            count_logical=psutil.cpu_count(logical=True) or 1,
            count_physical=psutil.cpu_count(logical=False),
            frequency_mhz=None if frequency is None else round(frequency.current, 1),
        )

    def memory(self) -> MemoryInfo:
        """Memory in GiB; "free" is what programs can still get (available)."""
        vm = psutil.virtual_memory()
        used_bytes = vm.total - vm.available
        return MemoryInfo(
            total_gb=_gib(vm.total),
            used_gb=_gib(used_bytes),
            free_gb=_gib(vm.available),
            usage_percent=round(vm.percent, 1),
        )

    def gpus(self) -> list[GpuInfo]:
        return self.gpu_monitor.gpus()

    def gpu(self, device_id: int) -> GpuInfo:
        return self.gpu_monitor.gpu(device_id)

    def snapshot(self) -> SystemResources:
        """CPU, memory and GPUs read together."""
        return SystemResources(cpu=self.cpu(), memory=self.memory(), gpus=self.gpus())


def _gib(size_bytes: int) -> float:
    return round(size_bytes / BYTES_PER_GIB, 2)


_default_monitor: ResourceMonitor | None = None
_default_lock = threading.Lock()


def default_monitor() -> ResourceMonitor:
    """The process-wide monitor (one NVML session per process)."""
    global _default_monitor
    with _default_lock:
        if _default_monitor is None:
            _default_monitor = ResourceMonitor()
        return _default_monitor
