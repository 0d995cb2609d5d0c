"""A small Merkle tree over byte leaves (pure), re-computable by anyone offline.

- leaf hash  = keccak256(0x00 ‖ leaf bytes)
- node hash  = keccak256(0x01 ‖ min(a, b) ‖ max(a, b))   (sorted pairs: proofs need no left/right)
- an odd node at the end of a level is carried up unchanged; the root of no leaves is 32 zero bytes.
The 0x00/0x01 prefixes keep a leaf from ever being taken for an inner node.
"""

from __future__ import annotations

from collections.abc import Iterable

from sha3 import keccak_256

from governance.hashing import keccak

EMPTY_ROOT = b"\x00" * 32


def leaf_hash(data: bytes) -> bytes:
    return keccak(b"\x00" + data)


def node_hash(a: bytes, b: bytes) -> bytes:
    lo, hi = (a, b) if a <= b else (b, a)
    return keccak(b"\x01" + lo + hi)


class RootBuilder:
    """The root built leaf by leaf in O(log n) memory, for logs too large to hold at once.

    Pairs are hashed as soon as both exist; at the end the single leftover node of each level
    (an odd one out) is carried up, exactly as the level-by-level definition above does.
    """

    def __init__(self) -> None:
        self._pending: list[bytes | None] = []  # at most one unpaired node per level
        self.leaves = 0

    def add(self, data: bytes) -> None:
        # leaf_hash and node_hash inlined: a million-ballot tally calls this a million times,
        # and the calls cost more than the hashing (tests/unit/test_merkle_stream.py checks
        # the result against the level-by-level definition)
        self.leaves += 1
        node = keccak_256(b"\x00" + data).digest()
        pending = self._pending
        for level, left in enumerate(pending):
            if left is None:
                pending[level] = node
                return
            pending[level] = None
            node = keccak_256(b"\x01" + left + node if left <= node else b"\x01" + node + left).digest()
        pending.append(node)

    def root(self) -> bytes:
        carry: bytes | None = None
        for node in self._pending:
            if node is None:
                continue  # nothing waits here; a carried node moves up unchanged
            carry = node if carry is None else node_hash(node, carry)
        return carry if carry is not None else EMPTY_ROOT


def root(leaves: Iterable[bytes]) -> bytes:
    """The root over leaf data in the given order (callers sort first)."""
    builder = RootBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def ballot_leaf(vote_id: str, weight: int) -> bytes:
    """A counted ballot: its 32-byte id and its weight as a 32-byte big-endian integer."""
    return bytes.fromhex(vote_id.removeprefix("0x")) + weight.to_bytes(32, "big")


def holder_leaf(address: str, balance: int) -> bytes:
    """A holder-list row: the address as UTF-8 (either wallet family), then the balance."""
    raw = address.encode()
    return len(raw).to_bytes(1, "big") + raw + balance.to_bytes(32, "big")


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root of ``leaves`` (in tree order), one
    per level where the node has a sibling; a level where it is the odd node carried up adds
    nothing. Pairs are sorted before hashing, so a proof needs no left/right flags
    (:func:`verify_proof` checks one)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    level = [leaf_hash(x) for x in leaves]
    path: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        index //= 2
    return path


def verify_proof(leaf: bytes, path: Iterable[bytes], expected_root: bytes) -> bool:
    """Whether ``leaf`` (its data, not yet hashed) is in the tree whose root is ``expected_root``."""
    node = leaf_hash(leaf)
    for sibling in path:
        node = node_hash(node, sibling)
    return node == expected_root
