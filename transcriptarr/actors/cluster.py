"""Start or join the Ray cluster and create the named actors.

This is the one place where ``ray.remote`` is applied to the actor classes.
Ray never faces the network from here: a local head binds to loopback, the
dashboard is off, and token authentication is on.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from transcriptarr import logs
from transcriptarr.actors.pool import WorkerPool
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard, QueuePolicy
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService

logger = logging.getLogger(__name__)

NAMESPACE = "transcriptarr"
QUEUE_ACTOR = "transcriptarr-queue"
SETTINGS_ACTOR = "transcriptarr-settings"
SCANNER_ACTOR = "transcriptarr-scanner"
POOL_ACTOR = "transcriptarr-pool"

# Async actors: one event loop serves many concurrent calls.
_ACTOR_CONCURRENCY = 1000


def ensure_auth_token(token_path: Path) -> None:
    """Point Ray at a token file, generating it (mode 0600) the first time.

    A token given by the environment (``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``) wins, which is how a node joins a cluster.
    """
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    if not token_path.exists():
        token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_path)


def init_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    token_path: Path | None = None,
) -> None:
    """Join ``address``, or start a local head bound to loopback.

    Args:
        address: A cluster to join; None starts a local head.
        num_cpus: CPUs the local head offers (None: all of them).
        token_path: Where the Ray auth token is kept when the environment
            names none; child processes inherit the path.
    """
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    if token_path is not None:
        ensure_auth_token(token_path)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common: dict[str, Any] = {
        "namespace": NAMESPACE,
        "log_to_driver": True,
        "configure_logging": False,
        "runtime_env": {
            "worker_process_setup_hook": "transcriptarr.logs.configure_from_env",
            "env_vars": {
                logs.LEVEL_ENV: logging.getLevelName(
                    logging.getLogger("transcriptarr").getEffectiveLevel()
                )
            },
        },
    }
    if address:
        ray.init(address=address, **common)
        logger.info("joined Ray cluster at %s", address)
        return
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        **common,
    )
    logger.info("started a local Ray head on 127.0.0.1")


def gcs_address() -> str:
    """The address other processes pass to ``init_ray`` to join."""
    return str(ray.get_runtime_context().gcs_address)


@dataclass
class ActorHandles:
    queue: Any
    settings: Any
    pool: Any = None
    scanner: Any = None


def _named(cls: type, name: str, **options: Any) -> Any:
    """``cls`` as a named async actor pinned to this process's node.

    The SQLite file and the models folder live in the data directory of the
    node that runs the server, so the actors that use them must run there too,
    even when other nodes of a cluster have room.
    """
    remote_cls: Any = ray.remote(cls)
    here = NodeAffinitySchedulingStrategy(
        node_id=ray.get_runtime_context().get_node_id(), soft=False
    )
    return remote_cls.options(
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        max_concurrency=_ACTOR_CONCURRENCY,
        max_restarts=-1,
        scheduling_strategy=here,
        **options,
    )


async def create_actors(
    data_dir: Path,
    *,
    suffix: str = "",
    with_pool: bool = True,
    with_scanner: bool = True,
) -> ActorHandles:
    """Create (or find) the settings and queue actors, started and ready.

    Args:
        data_dir: Where the SQLite file lives.
        suffix: Appended to every actor name, so tests can run several sets
            side by side on one cluster.
        with_pool: Also start the worker pool with the workers the settings
            ask for (tests of other parts leave it out).
        with_scanner: Also start the scanner actor (which resumes its
            scheduler and watcher when the settings enable them).
    """
    db_path = str(data_dir / "transcriptarr.db")
    settings = _named(SettingsService, SETTINGS_ACTOR + suffix, num_cpus=0).remote(
        db_path
    )
    await settings.start.remote()
    values = await settings.values.remote()
    policy = QueuePolicy(
        max_retries=int(values["queue_max_retries"]),
        backoff_base_s=float(values["queue_backoff_base_s"]),
        backoff_max_s=float(values["queue_backoff_max_s"]),
        lease_s=float(values["queue_lease_s"]),
    )
    queue = _named(JobBoard, QUEUE_ACTOR + suffix, num_cpus=0).remote(
        db_path, policy=policy
    )
    await queue.start.remote()
    handles = ActorHandles(queue=queue, settings=settings)
    if with_scanner:
        handles.scanner = await create_scanner(data_dir, suffix=suffix)
    if with_pool:
        handles.pool = await create_pool(data_dir / "models", suffix=suffix)
    return handles


async def create_pool(models_dir: Path, *, suffix: str = "") -> Any:
    """Create (or find) the worker pool actor and start its workers.

    The queue and settings actors of the same ``suffix`` must exist.
    """
    pool = _named(WorkerPool, POOL_ACTOR + suffix, num_cpus=0).remote(
        QUEUE_ACTOR + suffix, SETTINGS_ACTOR + suffix, str(models_dir)
    )
    await pool.start.remote()
    return pool


async def create_scanner(data_dir: Path, *, suffix: str = "") -> Any:
    """Create (or find) the scanner actor, started, over the same database.

    The queue and settings actors of the same ``suffix`` must exist.
    """
    scanner = _named(ScannerService, SCANNER_ACTOR + suffix, num_cpus=0).remote(
        str(data_dir / "transcriptarr.db"),
        queue=QUEUE_ACTOR + suffix,
        settings=SETTINGS_ACTOR + suffix,
        models_dir=str(data_dir / "models"),
    )
    await scanner.start.remote()
    return scanner


def lookup(name: str) -> ActorProxy | None:
    """A proxy of a named actor, or None when it does not exist."""
    try:
        return ActorProxy(ray.get_actor(name, namespace=NAMESPACE))
    except ValueError:
        return None


async def close_actors(handles: ActorHandles, *, kill: bool = False) -> None:
    """Stop the workers, then flush and close the actors' databases."""
    live = (handles.pool, handles.scanner, handles.queue, handles.settings)
    for handle in (handle for handle in live if handle is not None):
        try:
            await handle.close.remote()
        except ray.exceptions.RayError:
            logger.warning("an actor was already gone at shutdown")
        if kill:
            ray.kill(handle, no_restart=True)
