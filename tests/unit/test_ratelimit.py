"""The token bucket behind 429 + Retry-After."""

from __future__ import annotations

from governance.ratelimit import TokenBuckets


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_limited_then_refilled() -> None:
    clock = FakeTime()
    b = TokenBuckets(per_minute=60, burst=3, now=clock)
    assert [b.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = b.take("a")
    assert 0.99 < wait <= 1.0  # one token a second
    assert b.take("b") == 0.0  # another client has its own bucket
    clock.t += 1.0
    assert b.take("a") == 0.0
    assert b.take("a") > 0


def test_refill_never_exceeds_burst() -> None:
    clock = FakeTime()
    b = TokenBuckets(per_minute=600, burst=2, now=clock)
    clock.t += 3600
    assert [b.take("a") == 0.0 for _ in range(3)] == [True, True, False]
