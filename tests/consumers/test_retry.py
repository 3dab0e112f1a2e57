"""RetryPolicy: capped exponential delays with jitter, and calls that really wait them."""

import time

import pytest

from consumers.errors import JobInputError
from consumers.retry import RetryPolicy

SAMPLES = 400


def delays(policy: RetryPolicy, retry: int) -> list[float]:
    return [policy.delay(retry) for _ in range(SAMPLES)]


def test_delays_double_up_to_the_cap_with_20_percent_jitter():
    policy = RetryPolicy(initial_seconds=0.5, max_seconds=3.0)
    for retry, base in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0), (30, 3.0)):
        sample = delays(policy, retry)
        assert 0.8 * base <= min(sample) and max(sample) <= 1.2 * base, (retry, min(sample), max(sample))
        # Jittered over the whole ±20 % (so consumers retrying together spread out).
        assert min(sample) < 0.85 * base and max(sample) > 1.15 * base, (retry, min(sample), max(sample))
        assert len(set(sample)) > SAMPLES * 0.9


def test_a_failing_step_is_retried_after_waiting_each_delay():
    policy = RetryPolicy(attempts=4, initial_seconds=0.05, max_seconds=0.1)
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise OSError("storage hiccup")
        return "stored"

    assert policy.call(flaky, "saving") == "stored"
    gaps = [later - earlier for earlier, later in zip(calls, calls[1:])]
    assert len(gaps) == 3
    for gap, base in zip(gaps, (0.05, 0.1, 0.1)):
        assert gap >= 0.8 * base, gaps


def test_the_last_error_is_raised_after_the_last_attempt():
    policy = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.01)
    calls = []

    def broken():
        calls.append(1)
        raise OSError(f"try {len(calls)}")

    with pytest.raises(OSError, match="try 3"):
        policy.call(broken, "saving")
    assert len(calls) == 3


def test_bad_input_is_not_retried():
    calls = []

    def bad():
        calls.append(1)
        raise JobInputError("not an image")

    with pytest.raises(JobInputError):
        RetryPolicy(attempts=4, initial_seconds=10).call(bad, "reading")
    assert calls == [1]
