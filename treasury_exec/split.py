"""Revenue split and token issuance arithmetic (pure, integers only)."""

from __future__ import annotations

from collections.abc import Mapping

from governance.types import BPS

REMAINDER_BUCKET = "treasury"


def split_payment(payment: int, allocation: Mapping[str, int]) -> dict[str, int]:
    """Each bucket gets floor(payment × bps / 10000); what rounding leaves goes to ``treasury``,
    so the parts always sum to the payment exactly."""
    parts = {bucket: payment * bps // BPS for bucket, bps in allocation.items()}
    parts[REMAINDER_BUCKET] = parts.get(REMAINDER_BUCKET, 0) + payment - sum(parts.values())
    return parts


def tokens_for_payment(payment: int, price: int, decimals: int) -> int:
    """Base units bought with ``payment`` micro-USD at ``price`` micro-USD per whole token.

    Rounded down: the buyer receives floor(payment × 10^decimals / price) base units; a
    fraction of a base unit is never issued (at 18 decimals that is below 10^-18 token).
    """
    return payment * 10**decimals // price
