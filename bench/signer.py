"""Pre-signing many messages fast, for load generation only.

The digest comes from the server's own encoder (the test suite proves that encoder against
ethers and eth-account); signing uses coincurve and PyNaCl directly, because eth-account's
``sign_typed_data`` costs about a millisecond a message and the bench signs tens of thousands.
Every signature is real: the server verifies each one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import base58
from coincurve import PrivateKey
from nacl.signing import SigningKey

from governance.hashing import keccak
from governance.signatures import checksum_address
from governance.typed_data import SIGNER_FIELD, TypedDataEncoder, canonical_json


@dataclass
class Signer:
    scheme: str
    address: str
    key: Any

    @classmethod
    def evm(cls, seed: int) -> Signer:
        key = PrivateKey(keccak(b"bench-evm" + seed.to_bytes(8, "big")))
        raw = keccak(key.public_key.format(compressed=False)[1:])[-20:].hex()
        return cls("eip712", checksum_address(raw), key)

    @classmethod
    def solana(cls, seed: int) -> Signer:
        key = SigningKey(keccak(b"bench-sol" + seed.to_bytes(8, "big")))
        return cls("ed25519", base58.b58encode(bytes(key.verify_key)).decode(), key)

    def envelope(self, encoder: TypedDataEncoder, primary: str, message: dict[str, Any]) -> dict[str, Any]:
        assert message[SIGNER_FIELD[primary]] == self.address
        if self.scheme == "eip712":
            sig = self.key.sign_recoverable(encoder.digest(primary, message), hasher=None)
            signature = "0x" + (sig[:64] + bytes([27 + sig[64]])).hex()
        else:
            signature = base58.b58encode(
                self.key.sign(canonical_json(encoder.domain, primary, message)).signature).decode()
        return {"type": primary, "scheme": self.scheme, "signer": self.address, "signature": signature,
                "message": message}


def vote_body(signer: Signer, encoder: TypedDataEncoder, proposal: str, choice: int, now: int) -> bytes:
    msg = {"voter": signer.address, "proposal": proposal, "choice": choice, "reason": "", "timestamp": now}
    return json.dumps(signer.envelope(encoder, "Vote", msg), separators=(",", ":")).encode()
