"""CPU, memory and GPU readings.

The CPU and memory tests read this machine through psutil. The no-GPU tests run
the real NVML binding on a machine without an NVIDIA driver; the GPU-present
tests use a fake NVML object, because a GPU cannot run here.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from transcriptarr.errors import NotFound
from transcriptarr.resources import GpuInfo, GpuMonitor, ResourceMonitor

MIB = 1024**2
GIB = 1024**3


def _nvml_works_here() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


needs_no_gpu = pytest.mark.skipif(
    _nvml_works_here(), reason="this machine has an NVIDIA driver"
)


class FakeNvmlError(Exception):
    pass


@dataclass
class FakeGpu:
    name: str | bytes
    total_bytes: int
    used_bytes: int
    utilization_percent: int
    broken: bool = False


@dataclass
class FakeNvml:
    """NVML as the tests need it: a list of GPUs and call counters."""

    gpus: list[FakeGpu] = field(default_factory=list)
    fail_init: bool = False
    init_calls: int = 0
    shutdown_calls: int = 0
    NVMLError: type[Exception] = FakeNvmlError

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.fail_init:
            raise FakeNvmlError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise FakeNvmlError("Invalid Argument")
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str | bytes:
        if handle.broken:
            raise FakeNvmlError("GPU is lost")
        return handle.name

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Any:
        free_bytes = handle.total_bytes - handle.used_bytes
        return SimpleNamespace(
            total=handle.total_bytes, used=handle.used_bytes, free=free_bytes
        )

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> Any:
        return SimpleNamespace(gpu=handle.utilization_percent, memory=0)


def rtx_3080() -> FakeGpu:
    return FakeGpu("NVIDIA GeForce RTX 3080", 10240 * MIB, 2048 * MIB, 15)


@needs_no_gpu
def test_a_machine_without_an_nvidia_driver_has_no_gpus() -> None:
    assert GpuMonitor().gpus() == []


@needs_no_gpu
def test_gpu_zero_is_not_found_on_a_machine_without_an_nvidia_driver() -> None:
    with pytest.raises(NotFound, match="GPU 0 not found"):
        GpuMonitor().gpu(0)


def test_a_gpu_is_shown_with_memory_in_mebibytes_and_utilization() -> None:
    monitor = GpuMonitor(FakeNvml([rtx_3080()]))

    assert monitor.gpus() == [
        GpuInfo(
            id=0,
            name="NVIDIA GeForce RTX 3080",
            memory_total_mb=10240,
            memory_used_mb=2048,
            memory_free_mb=8192,
            utilization_percent=15,
        )
    ]


def test_gpu_names_that_older_bindings_return_as_bytes_read_as_text() -> None:
    gpu = FakeGpu(b"Tesla T4", 15360 * MIB, 0, 0)

    assert GpuMonitor(FakeNvml([gpu])).gpu(0).name == "Tesla T4"


def test_one_gpu_is_found_by_its_device_id() -> None:
    second = FakeGpu("NVIDIA A100", 40960 * MIB, 1024 * MIB, 80)
    monitor = GpuMonitor(FakeNvml([rtx_3080(), second]))

    gpu = monitor.gpu(1)

    assert (gpu.id, gpu.name, gpu.memory_free_mb) == (1, "NVIDIA A100", 39936)


@pytest.mark.parametrize("device_id", [2, -1])
def test_an_unknown_gpu_id_is_not_found(device_id: int) -> None:
    monitor = GpuMonitor(FakeNvml([rtx_3080()]))

    with pytest.raises(NotFound, match=f"GPU {device_id} not found"):
        monitor.gpu(device_id)


def test_nvml_is_initialised_once_for_many_readings() -> None:
    nvml = FakeNvml([rtx_3080()])
    monitor = GpuMonitor(nvml)

    for _ in range(3):
        monitor.gpus()
    monitor.gpu(0)

    assert nvml.init_calls == 1


def test_nvml_is_not_initialised_before_the_first_reading() -> None:
    nvml = FakeNvml([rtx_3080()])

    GpuMonitor(nvml)

    assert nvml.init_calls == 0


def test_a_failing_nvml_means_no_gpus_and_is_not_retried_per_request() -> None:
    nvml = FakeNvml([rtx_3080()], fail_init=True)
    monitor = GpuMonitor(nvml)

    assert monitor.gpus() == []
    assert monitor.gpus() == []
    with pytest.raises(NotFound):
        monitor.gpu(0)
    assert nvml.init_calls == 1


def test_a_gpu_that_cannot_be_read_is_left_out_and_the_others_shown() -> None:
    lost = FakeGpu("NVIDIA A100", 40960 * MIB, 0, 0, broken=True)
    monitor = GpuMonitor(FakeNvml([lost, rtx_3080()]))

    assert [gpu.id for gpu in monitor.gpus()] == [1]
    with pytest.raises(NotFound):
        monitor.gpu(0)


def test_shutdown_releases_nvml_once_and_only_after_it_was_used() -> None:
    unused, used = FakeNvml([rtx_3080()]), FakeNvml([rtx_3080()])
    GpuMonitor(unused).shutdown()
    monitor = GpuMonitor(used)
    monitor.gpus()

    monitor.shutdown()
    monitor.shutdown()

    assert (unused.shutdown_calls, used.shutdown_calls) == (0, 1)


def test_cpu_reading_has_counts_and_a_usage_between_0_and_100() -> None:
    cpu = ResourceMonitor(GpuMonitor(FakeNvml())).cpu()

    assert 0.0 <= cpu.usage_percent <= 100.0
    assert cpu.count_logical >= 1
    assert cpu.count_physical is None or cpu.count_physical <= cpu.count_logical


def test_cpu_frequency_is_null_where_the_platform_reports_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("psutil.cpu_freq", lambda: None)

    assert ResourceMonitor(GpuMonitor(FakeNvml())).cpu().frequency_mhz is None


VirtualMemory = namedtuple("VirtualMemory", "total available percent")


def test_memory_is_shown_in_gib_with_free_meaning_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reading = VirtualMemory(32 * GIB, int(19.5 * GIB), 39.0625)
    monkeypatch.setattr("psutil.virtual_memory", lambda: reading)

    memory = ResourceMonitor(GpuMonitor(FakeNvml())).memory()

    assert memory.model_dump() == {
        "total_gb": 32.0,
        "used_gb": 12.5,
        "free_gb": 19.5,
        "usage_percent": 39.1,
    }


def test_memory_used_and_free_add_up_to_the_total_on_this_machine() -> None:
    memory = ResourceMonitor(GpuMonitor(FakeNvml())).memory()

    assert memory.total_gb > 0
    assert abs(memory.used_gb + memory.free_gb - memory.total_gb) <= 0.02


def test_a_snapshot_holds_cpu_memory_and_the_gpus() -> None:
    snapshot = ResourceMonitor(GpuMonitor(FakeNvml([rtx_3080()]))).snapshot()

    assert [gpu.name for gpu in snapshot.gpus] == ["NVIDIA GeForce RTX 3080"]
    assert snapshot.memory.total_gb > 0
    assert snapshot.cpu.count_logical >= 1
