"""Inclusion proofs: every leaf of every tree size proves into the root, and nothing else does."""

from __future__ import annotations

import hashlib

import pytest

from voting.merkle import inclusion_proof, root, verify_proof


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() + bytes([i % 7]) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_every_leaf_proves_into_the_root(n: int) -> None:
    leaves = _leaves(n)
    r = root(leaves)
    for i, leaf in enumerate(leaves):
        assert verify_proof(leaf, inclusion_proof(leaves, i), r)


def test_a_changed_leaf_or_path_does_not_prove() -> None:
    leaves = _leaves(9)
    r = root(leaves)
    path = inclusion_proof(leaves, 4)
    assert not verify_proof(leaves[4] + b"\x00", path, r)
    assert not verify_proof(leaves[4], path[:-1], r)
    assert not verify_proof(leaves[5], path, r)


def test_a_single_leaf_has_an_empty_path_and_an_out_of_range_index_is_refused() -> None:
    assert inclusion_proof([b"a"], 0) == []
    with pytest.raises(IndexError):
        inclusion_proof([b"a"], 1)
