"""Column types for exact integers.

Token amounts are uint256 in base units (18 decimals make 10^27 for a billion tokens), past
the 64-bit integers SQLite and PostgreSQL ``BIGINT`` hold. :class:`Uint256` keeps them
exact: ``NUMERIC(78,0)`` on PostgreSQL, a decimal string on SQLite (whose ``NUMERIC``
affinity would silently turn large values into floats). Arithmetic on them happens in
Python, where ints are exact; SQL only stores and compares for equality.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

UINT256_MAX = 2**256 - 1
BPS = 10_000  # basis points in a whole: shares, rules and caps are in bps (1 bps = 0.01%)
_ASCII_DIGITS = re.compile(r"[0-9]+")


def parse_uint(text: str, maximum: int = UINT256_MAX) -> int | None:
    """The value of a decimal string of ASCII digits, if it is at most ``maximum``; else None.

    ``str.isdigit`` and ``int()`` are not that check: both take digits of every script
    (``int("١٠٠")`` is 100), ``isdigit`` also takes ``"²"`` (which ``int()`` then refuses),
    ``int()`` takes signs, spaces and ``_``, and refuses more than 4300 digits. A client's
    number is read only in the one form everybody reads the same way.
    """
    if not _ASCII_DIGITS.fullmatch(text):  # fullmatch: no "\n" slips past the way "$" lets it
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):  # before int(): bounds its work
        return None
    value = int(significant)
    return value if value <= maximum else None


class Uint256(TypeDecorator[int]):
    """An exact non-negative integer up to 2^256-1 (signed values allowed for deltas)."""

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(78, 0))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Uint256 columns take int, not {type(value).__name__}")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)

    @property
    def python_type(self) -> type[int]:
        return int


# Unix seconds as 64-bit integers (a 32-bit INTEGER on PostgreSQL ends in 2038).
Timestamp = BigInteger
