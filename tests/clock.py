"""A clock tests move by hand."""

from __future__ import annotations


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now_s: float = 1_000_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds
