"""Validation of proposal payloads, pure (the caller passes in what it read).

Each rule raises :class:`~governance.errors.Unprocessable` (422) with its own code, so a
frontend can point at the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from governance.errors import Unprocessable
from governance.types import BPS


def validate_text(title: str, description: str, *, title_max: int, description_max: int) -> None:
    if not title.strip():
        raise Unprocessable("the title is empty", code="title_empty")
    if len(title) > title_max:
        raise Unprocessable(f"the title has {len(title)} characters; at most {title_max}",
                            code="title_too_long")
    if len(description) > description_max:
        raise Unprocessable(
            f"the description has {len(description)} characters; at most {description_max}",
            code="description_too_long",
        )


def validate_price(new_price: int, current_price: int, *, max_change_bps: int) -> None:
    """A new price is positive and within ``max_change_bps`` of the price in force."""
    if new_price <= 0:
        raise Unprocessable("the price must be above zero", code="invalid_price")
    # |new - current| / current <= max_change_bps / 10000, in integers
    if abs(new_price - current_price) * BPS > max_change_bps * current_price:
        raise Unprocessable(
            f"price {new_price} moves more than {max_change_bps} bps from the price in force "
            f"({current_price} micro-USD per token)",
            code="price_change_too_large",
        )


def validate_allocation(shares: Sequence[tuple[str, int]], buckets: Iterable[str]) -> dict[str, int]:
    """Shares name exactly the configured buckets, once each, each 0..10000, summing to 10000."""
    configured = list(buckets)
    seen: dict[str, int] = {}
    for bucket, bps in shares:
        if bucket not in configured:
            raise Unprocessable(f"unknown bucket {bucket!r}; buckets are {', '.join(configured)}",
                                code="unknown_bucket")
        if bucket in seen:
            raise Unprocessable(f"bucket {bucket!r} appears twice", code="duplicate_bucket")
        if not 0 <= bps <= BPS:
            raise Unprocessable(f"share of {bucket!r} is {bps} bps; each share is 0..10000",
                                code="share_out_of_range")
        seen[bucket] = bps
    missing = [b for b in configured if b not in seen]
    if missing:
        raise Unprocessable(f"missing buckets: {', '.join(missing)}", code="missing_bucket")
    total = sum(seen.values())
    if total != BPS:
        raise Unprocessable(f"shares sum to {total} bps; they must sum to exactly 10000",
                            code="allocation_not_100")
    return seen


def validate_spend(*, bucket: str, asset: str, amount: int, buckets: Iterable[str],
                   assets: Mapping[str, str], recipient_ok: bool, bucket_balance: int,
                   cap_bps: int) -> int:
    """Checks a treasury spend; returns the cap that applied (base units of the asset)."""
    if bucket not in set(buckets):
        raise Unprocessable(f"unknown bucket {bucket!r}", code="unknown_bucket")
    if asset not in assets:
        raise Unprocessable(f"asset {asset!r} is not configured; assets are {', '.join(assets)}",
                            code="unknown_asset")
    if not recipient_ok:
        raise Unprocessable(f"the recipient is not a valid address for {asset}", code="invalid_recipient")
    if amount <= 0:
        raise Unprocessable("the amount must be above zero", code="invalid_amount")
    cap = bucket_balance * cap_bps // BPS
    if amount > cap:
        raise Unprocessable(
            f"amount {amount} exceeds the cap of {cap} ({cap_bps} bps of the {bucket} bucket's "
            f"balance {bucket_balance})",
            code="spend_over_cap",
        )
    return cap
