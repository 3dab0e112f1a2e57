"""Retrying a failing step with capped exponential backoff."""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from consumers.errors import JobInputError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try a step, and how long to wait between tries."""

    attempts: int = 4
    initial_seconds: float = 0.5
    max_seconds: float = 10.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based), with ±20 % jitter."""
        base = min(self.max_seconds, self.initial_seconds * 2 ** (retry - 1))
        return base * random.uniform(0.8, 1.2)

    def call(self, step: Callable[[], T], what: str) -> T:
        """Run `step`; on a transient error wait and try again, up to `attempts` tries.

        A `JobInputError` is never retried: the input will not get better.
        """
        for attempt in range(1, self.attempts + 1):
            try:
                return step()
            except JobInputError:
                raise
            except Exception as error:
                if attempt == self.attempts:
                    raise
                wait = self.delay(attempt)
                log.warning("%s failed (%s: %s); retry %d/%d in %.1f s", what,
                            type(error).__name__, error, attempt, self.attempts - 1, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")
