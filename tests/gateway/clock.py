"""A clock the test moves by hand, injected where code would read time."""

from __future__ import annotations


class FakeClock:
    """Returns ``now`` until ``advance`` moves it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
