"""Keccak-256, the hash of EIP-712 digests, addresses and the tally's Merkle tree.

``safe-pysha3`` (a maintained C build of the Keccak reference code) hashes a short message in
about 0.7 µs; eth-hash's default pycryptodome backend takes about 5 µs through cffi. Finalizing
a million ballots hashes two million tree nodes, so this is the difference of seconds. The
test suite checks both agree (tests/unit/test_hashing.py).
"""

from __future__ import annotations

from sha3 import keccak_256


def keccak(data: bytes) -> bytes:
    return keccak_256(data).digest()
