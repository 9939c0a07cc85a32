"""Integration fixtures: one real local Ray cluster for the whole session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import ray
from aiohttp.test_utils import TestClient, TestServer

from transcriptarr.actors import cluster
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local Ray head on loopback with token auth, started once."""
    token_path = tmp_path_factory.mktemp("ray") / "auth_token"
    cluster.init_ray(num_cpus=2, token_path=token_path)
    yield
    ray.shutdown()


@pytest.fixture
async def actors(
    ray_cluster: None, tmp_path: Path
) -> AsyncIterator[cluster.ActorHandles]:
    """Fresh queue and settings actors over a new SQLite file (no workers)."""
    handles = await cluster.create_actors(
        tmp_path, suffix=f"-{uuid.uuid4().hex[:8]}", with_pool=False
    )
    yield handles
    await cluster.close_actors(handles, kill=True)


@pytest.fixture
async def live_api(
    actors: cluster.ActorHandles,
) -> AsyncIterator[TestClient[object, object]]:
    """The real app in this process, calling real actors through Ray."""
    services = Services(
        queue=ActorProxy(actors.queue), settings=ActorProxy(actors.settings)
    )
    client: TestClient[object, object] = TestClient(TestServer(create_app(services)))
    await client.start_server()
    yield client
    await client.close()
