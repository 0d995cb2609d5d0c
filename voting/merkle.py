"""A small Merkle tree over byte leaves (pure), re-computable by anyone offline.

- leaf hash  = keccak256(0x00 ‖ leaf bytes)
- node hash  = keccak256(0x01 ‖ min(a, b) ‖ max(a, b))   (sorted pairs: proofs need no left/right)
- an odd node at the end of a level is carried up unchanged; the root of no leaves is 32 zero bytes.
The 0x00/0x01 prefixes keep a leaf from ever being taken for an inner node.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_hash.auto import keccak

EMPTY_ROOT = b"\x00" * 32


def leaf_hash(data: bytes) -> bytes:
    return keccak(b"\x00" + data)


def node_hash(a: bytes, b: bytes) -> bytes:
    lo, hi = (a, b) if a <= b else (b, a)
    return keccak(b"\x01" + lo + hi)


def root(leaves: Iterable[bytes]) -> bytes:
    """The root over leaf data in the given order (callers sort first)."""
    level = [leaf_hash(x) for x in leaves]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def ballot_leaf(vote_id: str, weight: int) -> bytes:
    """A counted ballot: its 32-byte id and its weight as a 32-byte big-endian integer."""
    return bytes.fromhex(vote_id.removeprefix("0x")) + weight.to_bytes(32, "big")


def holder_leaf(address: str, balance: int) -> bytes:
    """A holder-list row: the address as UTF-8 (either wallet family), then the balance."""
    raw = address.encode()
    return len(raw).to_bytes(1, "big") + raw + balance.to_bytes(32, "big")
