"""One calling convention for an actor, whether it runs on Ray or in-process.

``await proxy.method(*args)`` calls ``handle.method.remote(*args)`` on a Ray actor
handle (an ObjectRef is awaitable), or awaits the plain object's coroutine method
directly. Unit tests run the front end against plain objects; production and
integration tests pass Ray handles.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import ray
from ray.actor import ActorHandle


class ActorProxy:
    """Awaitable method calls on a Ray actor handle or a plain object."""

    __slots__ = ("_is_ray", "_target")

    def __init__(self, target: Any) -> None:
        self._target = target
        self._is_ray = isinstance(target, ActorHandle)

    @property
    def target(self) -> Any:
        return self._target

    @property
    def is_ray(self) -> bool:
        return self._is_ray

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._target, name)
        if self._is_ray:
            return _remote_caller(method)
        return _local_caller(method)


def resolve_actor(target: Any) -> Any:
    """A named actor's handle for a name, else ``target`` itself.

    Actors are given each other's names rather than handles: a handle passed
    to a constructor lives in Ray's object store, and Ray cannot restart an
    actor whose constructor arguments were lost.
    """
    return ray.get_actor(target) if isinstance(target, str) else target


def _remote_caller(method: Any) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await method.remote(*args, **kwargs)

    return call


def _local_caller(method: Any) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    return call
