"""Proposal payload rules, pure: each failure has its own code."""

from __future__ import annotations

import pytest

from governance.errors import Unprocessable
from proposals.validation import validate_allocation, validate_price, validate_spend, validate_text

BUCKETS = ["compute", "development", "treasury", "buybacks", "community"]
DEFAULT = [("compute", 5000), ("development", 2000), ("treasury", 1500), ("buybacks", 1000), ("community", 500)]


def code_of(fn, *a, **kw) -> str:
    with pytest.raises(Unprocessable) as info:
        fn(*a, **kw)
    return info.value.code


def test_allocation_must_sum_to_exactly_10000() -> None:
    assert validate_allocation(DEFAULT, BUCKETS)["compute"] == 5000
    assert code_of(validate_allocation, [*DEFAULT[:-1], ("community", 499)], BUCKETS) == "allocation_not_100"
    assert code_of(validate_allocation, [*DEFAULT[:-1], ("community", 501)], BUCKETS) == "allocation_not_100"


def test_allocation_bucket_rules() -> None:
    assert code_of(validate_allocation, [*DEFAULT, ("compute", 0)], BUCKETS) == "duplicate_bucket"
    assert code_of(validate_allocation, DEFAULT[:-1], BUCKETS) == "missing_bucket"
    assert code_of(validate_allocation, [*DEFAULT[:-1], ("marketing", 500)], BUCKETS) == "unknown_bucket"
    assert code_of(validate_allocation, [("compute", 10001), *DEFAULT[1:]], BUCKETS) == "share_out_of_range"


def test_price_rules() -> None:
    validate_price(150_000, 100_000, max_change_bps=5000)  # +50% is the limit, inclusive
    assert code_of(validate_price, 150_001, 100_000, max_change_bps=5000) == "price_change_too_large"
    assert code_of(validate_price, 0, 100_000, max_change_bps=5000) == "invalid_price"


def test_spend_rules() -> None:
    kw = dict(bucket="community", asset="USD", amount=100, buckets=BUCKETS, assets={"USD": "any"},
              recipient_ok=True, bucket_balance=1000, cap_bps=1000)
    assert validate_spend(**kw) == 100
    assert code_of(validate_spend, **{**kw, "amount": 101}) == "spend_over_cap"
    assert code_of(validate_spend, **{**kw, "amount": 0}) == "invalid_amount"
    assert code_of(validate_spend, **{**kw, "bucket": "nope"}) == "unknown_bucket"
    assert code_of(validate_spend, **{**kw, "asset": "DOGE"}) == "unknown_asset"
    assert code_of(validate_spend, **{**kw, "recipient_ok": False}) == "invalid_recipient"


def test_text_limits() -> None:
    validate_text("t", "", title_max=5, description_max=5)
    assert code_of(validate_text, " ", "", title_max=5, description_max=5) == "title_empty"
    assert code_of(validate_text, "toolong", "", title_max=5, description_max=5) == "title_too_long"
    assert code_of(validate_text, "t", "toolong", title_max=5, description_max=5) == "description_too_long"
