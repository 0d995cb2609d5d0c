"""Revenue split and issuance arithmetic: exact integers, remainders to treasury."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from treasury_exec.split import split_payment, tokens_for_payment

DEFAULT = {"compute": 5000, "development": 2000, "treasury": 1500, "buybacks": 1000, "community": 500}


def test_even_split() -> None:
    assert split_payment(10_000, DEFAULT) == {"compute": 5000, "development": 2000, "treasury": 1500,
                                              "buybacks": 1000, "community": 500}


def test_remainders_go_to_treasury() -> None:
    assert split_payment(1, DEFAULT) == {"compute": 0, "development": 0, "treasury": 1, "buybacks": 0, "community": 0}
    assert split_payment(7, DEFAULT) == {"compute": 3, "development": 1, "treasury": 3, "buybacks": 0, "community": 0}
    assert split_payment(9_999, DEFAULT) == {"compute": 4999, "development": 1999, "treasury": 1503,
                                             "buybacks": 999, "community": 499}
    assert split_payment(10_001, DEFAULT) == {"compute": 5000, "development": 2000, "treasury": 1501,
                                              "buybacks": 1000, "community": 500}


@given(st.integers(0, 10**30), st.lists(st.integers(0, 10_000), min_size=4, max_size=4))
def test_parts_always_sum_to_the_payment(payment, cuts) -> None:
    # any allocation summing to 10000 over the five buckets
    points = sorted(cuts)
    shares = [points[0], points[1] - points[0], points[2] - points[1], points[3] - points[2], 10_000 - points[3]]
    alloc = dict(zip(DEFAULT, shares, strict=True))
    parts = split_payment(payment, alloc)
    assert sum(parts.values()) == payment
    assert all(v >= 0 for v in parts.values())
    for b in DEFAULT:
        if b != "treasury":
            assert parts[b] == payment * alloc[b] // 10_000


def test_tokens_round_down() -> None:
    assert tokens_for_payment(100_000, 100_000, 18) == 10**18  # $0.10 buys one token
    assert tokens_for_payment(1, 100_000, 18) == 10**13
    assert tokens_for_payment(1, 300_000, 18) == 10**18 // 300_000  # 3333333333333.33… → floor
    assert tokens_for_payment(1, 10**25, 6) == 0
