"""Start-on-first-use for actors that Ray may restart after a crash.

Ray re-runs an actor's constructor when it restarts it, but not the async
``start()`` that opens its database; methods decorated here call it first.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar


class Startable(Protocol):
    start_lock: asyncio.Lock

    @property
    def is_started(self) -> bool: ...

    async def start(self) -> None: ...


_M = TypeVar("_M", bound=Callable[..., Awaitable[Any]])


def ensure_started(method: _M) -> _M:
    """Run ``self.start()`` once before the first call of ``method``."""

    @functools.wraps(method)
    async def wrapper(self: Startable, *args: Any, **kwargs: Any) -> Any:
        if not self.is_started:
            async with self.start_lock:
                if not self.is_started:
                    await self.start()
        return await method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
