"""Where workers run: what each reserves from Ray, and whether it fits.

A CPU worker reserves one CPU per thread; a GPU worker reserves a fraction of
one GPU and addresses its device itself. The checks here answer, before any
actor exists, whether Ray could ever place a worker and whether it fits now,
with a message for the user when it does not. ``ray.remote`` is applied to
the worker class here, in :class:`RayWorkerLauncher`, because the pool is
where workers are created; tests drive the pool with a fake launcher.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import ray

from transcriptarr.actors.worker import Worker
from transcriptarr.actors.worker_types import WorkerSpec, WorkerType

logger = logging.getLogger(__name__)

WORKER_CONCURRENCY = 16
_EPSILON = 1e-6

# CTranslate2 picks the GPU by device_index, so Ray must leave every GPU
# visible; PCI bus order makes CUDA's numbering match NVML's and nvidia-smi's.
GPU_ENV_VARS = {
    "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1",
    "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
}


@dataclass(frozen=True, slots=True)
class ClusterResources:
    """Ray's CPUs and GPUs: all of them, the free ones, and GPUs per node."""

    total_cpus: float
    free_cpus: float
    total_gpus: float
    free_gpus: float
    gpus_per_node: int


@dataclass(slots=True)
class Reservation:
    """What a set of workers reserves, in total and on each GPU."""

    cpus: float = 0.0
    gpus: float = 0.0
    by_device: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[WorkerSpec]) -> Reservation:
        reservation = cls()
        for spec in specs:
            reservation.add(spec)
        return reservation

    def add(self, spec: WorkerSpec) -> None:
        if spec.worker_type is WorkerType.CPU:
            self.cpus += spec.cpu_threads
            return
        self.gpus += spec.gpu_fraction
        load = self.by_device.get(spec.device_index, 0.0)
        self.by_device[spec.device_index] = load + spec.gpu_fraction


def worker_options(spec: WorkerSpec) -> dict[str, Any]:
    """The Ray actor options that reserve what ``spec`` needs.

    A CPU worker reserves one CPU per thread it runs. A GPU worker reserves
    ``gpu_fraction`` of a GPU and no CPU: its CPU work (decoding audio) is
    light, and a reserved CPU would keep a CPU worker off a small machine.
    """
    if spec.worker_type is WorkerType.CPU:
        return {"num_cpus": spec.cpu_threads, "num_gpus": 0}
    return {
        "num_cpus": 0,
        "num_gpus": spec.gpu_fraction,
        "runtime_env": {"env_vars": dict(GPU_ENV_VARS)},
    }


def impossible_reason(spec: WorkerSpec, resources: ClusterResources) -> str | None:
    """Why Ray could never place ``spec``, or None when it could."""
    if spec.worker_type is WorkerType.CPU:
        if resources.total_cpus + _EPSILON < spec.cpu_threads:
            return (
                f"A CPU worker reserves {spec.cpu_threads} CPUs "
                f"(worker_cpu_threads) but the Ray cluster has only "
                f"{resources.total_cpus:g}"
            )
        return None
    if resources.total_gpus <= 0:
        return (
            "Cannot add a GPU worker: Ray sees no GPU in the cluster. Run it on "
            "a machine with an NVIDIA GPU and driver, or add a CPU worker"
        )
    if spec.device_index >= resources.gpus_per_node:
        return (
            f"GPU device_id {spec.device_index} does not exist: the Ray nodes "
            f"have at most {resources.gpus_per_node} GPU(s), "
            f"device_id 0 to {resources.gpus_per_node - 1}"
        )
    if spec.gpu_fraction > 1.0 + _EPSILON or spec.gpu_fraction <= 0:
        return (
            f"worker_gpu_fraction must be above 0 and at most 1, "
            f"not {spec.gpu_fraction:g}"
        )
    return None


def shortage_reason(
    spec: WorkerSpec,
    resources: ClusterResources,
    reserved: Reservation,
) -> str | None:
    """Why ``spec`` does not fit now, or None when it does.

    Args:
        spec: The worker to place.
        resources: Ray's current view.
        reserved: What the pool's workers (and the ones planned ahead of
            ``spec``) reserve; it covers the lag of Ray's free figures.
    """
    if spec.worker_type is WorkerType.CPU:
        free = min(resources.free_cpus, resources.total_cpus - reserved.cpus)
        if free + _EPSILON < spec.cpu_threads:
            return (
                f"No room for another CPU worker: it reserves {spec.cpu_threads} "
                f"CPU(s) and Ray has {max(free, 0):g} of {resources.total_cpus:g} "
                "free; remove a worker or lower worker_cpu_threads"
            )
        return None
    free = min(resources.free_gpus, resources.total_gpus - reserved.gpus)
    device_load = reserved.by_device.get(spec.device_index, 0.0)
    if device_load + spec.gpu_fraction > 1.0 + _EPSILON:
        return (
            f"GPU {spec.device_index} is full: its workers reserve "
            f"{device_load:g} of it and another needs {spec.gpu_fraction:g} "
            "(worker_gpu_fraction)"
        )
    if free + _EPSILON < spec.gpu_fraction:
        return (
            f"No GPU capacity for another GPU worker: it reserves "
            f"{spec.gpu_fraction:g} of a GPU and Ray has {max(free, 0):g} free"
        )
    return None


class WorkerLauncher(Protocol):
    """How the pool starts and ends worker processes."""

    def resources(self) -> ClusterResources:
        """The cluster's CPUs and GPUs as the scheduler sees them."""

    def launch(self, spec: WorkerSpec, queue: Any, settings: Any) -> Any:
        """Start a worker; return a handle whose methods ActorProxy can call."""

    def kill(self, handle: Any) -> None:
        """End a worker's process at once."""


class RayWorkerLauncher:
    """Workers as Ray actors on the cluster."""

    def resources(self) -> ClusterResources:
        total = ray.cluster_resources()  # type: ignore[no-untyped-call]
        free = ray.available_resources()  # type: ignore[no-untyped-call]
        per_node = [
            int(node["Resources"].get("GPU", 0))
            for node in ray.nodes()  # type: ignore[no-untyped-call]
            if node.get("Alive")
        ]
        return ClusterResources(
            total_cpus=float(total.get("CPU", 0.0)),
            free_cpus=float(free.get("CPU", 0.0)),
            total_gpus=float(total.get("GPU", 0.0)),
            free_gpus=float(free.get("GPU", 0.0)),
            gpus_per_node=max(per_node, default=0),
        )

    def launch(self, spec: WorkerSpec, queue: Any, settings: Any) -> Any:
        actor_class: Any = ray.remote(Worker)
        return actor_class.options(
            max_restarts=0,
            max_concurrency=WORKER_CONCURRENCY,
            **worker_options(spec),
        ).remote(spec, queue, settings)

    def kill(self, handle: Any) -> None:
        try:
            ray.kill(handle, no_restart=True)
        except ValueError:
            logger.debug("worker actor was already gone")
