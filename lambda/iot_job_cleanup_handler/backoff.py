"""How long to wait before trying again: exponential backoff with equal jitter, its
randomness injected (LimitExceededException and rounds that failed for now use one each)."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """Exponential backoff with equal jitter: half the step fixed, half random."""

    base: float = 2.0
    cap: float = 30.0
    random: Callable[[], float] = _random.random
    attempts: int = 0

    def next_delay(self) -> float:
        step = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return step / 2 + self.random() * step / 2

    def reset(self) -> None:
        self.attempts = 0
