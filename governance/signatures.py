"""Verifying signed envelopes from both wallet families (pure).

| scheme    | signer                                   | signature                         |
|-----------|------------------------------------------|-----------------------------------|
| ``eip712``  | EIP-55 checksummed 0x address (an EOA) | 0x + 65 bytes r‖s‖v, low s        |
| ``ed25519`` | base58 of a 32-byte public key (Solana)| base58 of 64 bytes                |

The record id is the EIP-712 digest of the message under the deployment's domain, whichever
scheme signed it, so one logical message has one id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import base58
import msgspec
from coincurve import PublicKey
from eth_hash.auto import keccak
from eth_utils import is_checksum_address, to_checksum_address
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from governance.errors import BadRequest, Forbidden, Unprocessable
from governance.typed_data import SIGNER_FIELD, TypedDataEncoder, canonical_json, decode_message, message_to_json

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """Every signed submission: the message, who signed it, how, and the signature."""

    type: str
    scheme: Literal["eip712", "ed25519"]
    signer: str
    signature: str
    message: dict[str, Any]


@dataclass(frozen=True)
class VerifiedMessage:
    primary_type: str
    scheme: str
    signer: str
    message: Any  # the typed Struct
    message_json: dict[str, Any]
    digest: bytes  # the record id
    signature: str


def is_solana_address(s: str) -> bool:
    if not 32 <= len(s) <= 44:
        return False
    try:
        return len(base58.b58decode(s)) == 32
    except ValueError:
        return False


def address_kind(s: str) -> Literal["evm", "solana"] | None:
    """``evm`` for an EIP-55 checksummed address, ``solana`` for base58 of 32 bytes."""
    if not isinstance(s, str):
        return None
    if s.startswith("0x") and len(s) == 42 and is_checksum_address(s):
        return "evm"
    if is_solana_address(s):
        return "solana"
    return None


def normalize_address(s: str) -> str:
    """The address as stored: exactly as given, once its form is valid (400 otherwise)."""
    if address_kind(s) is None:
        raise BadRequest(f"{s!r} is neither an EIP-55 checksummed address nor a Solana address",
                         code="invalid_address")
    return s


def check_freshness(timestamp: int, now: int, max_skew: int) -> None:
    """The signed timestamp must lie within ``max_skew`` seconds of the server's clock."""
    if timestamp < now - max_skew:
        raise Unprocessable(f"the signed timestamp {timestamp} is older than {max_skew} s "
                            f"(server time {now})", code="stale_timestamp")
    if timestamp > now + max_skew:
        raise Unprocessable(f"the signed timestamp {timestamp} is more than {max_skew} s ahead "
                            f"(server time {now})", code="future_timestamp")


def _recover_evm(digest: bytes, signature: str) -> str:
    sig = signature[2:] if signature.startswith("0x") else ""
    if len(sig) != 130:
        raise BadRequest("an eip712 signature is 0x followed by 65 bytes of hex", code="malformed_signature")
    try:
        raw = bytes.fromhex(sig)
    except ValueError as exc:
        raise BadRequest("the signature is not hex", code="malformed_signature") from exc
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    recid = v - 27 if v in (27, 28) else v if v in (0, 1) else None
    if recid is None:
        raise BadRequest(f"signature v is {v}; it must be 27 or 28 (or 0 or 1)", code="malformed_signature")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise BadRequest("signature r or s is out of range", code="malformed_signature")
    if s > HALF_N:
        # a high-s signature is the malleable twin of a low-s one; wallets never produce it
        raise BadRequest("signature s is in the upper half of the curve order", code="high_s_signature")
    try:
        pub = PublicKey.from_signature_and_message(raw[:64] + bytes([recid]), digest, hasher=None)
    except ValueError as exc:
        raise Forbidden("the signature does not verify", code="bad_signature") from exc
    return to_checksum_address(keccak(pub.format(compressed=False)[1:])[-20:])


def _verify_ed25519(payload: bytes, signer: str, signature: str) -> None:
    try:
        sig = base58.b58decode(signature)
    except ValueError as exc:
        raise BadRequest("an ed25519 signature is base58", code="malformed_signature") from exc
    if len(sig) != 64:
        raise BadRequest(f"an ed25519 signature is 64 bytes, not {len(sig)}", code="malformed_signature")
    try:
        VerifyKey(base58.b58decode(signer)).verify(payload, sig)
    except BadSignatureError as exc:
        raise Forbidden("the signature does not verify", code="bad_signature") from exc


def verify_envelope(envelope: Envelope, encoder: TypedDataEncoder) -> VerifiedMessage:
    """Check an envelope against this deployment's domain; returns the verified message.

    Order of checks: the signer's form for the scheme (400), the message's schema (400),
    the signer named in the message (403), the signature's form (400), the signature (403).
    """
    kind = address_kind(envelope.signer)
    if (envelope.scheme == "eip712") != (kind == "evm") or kind is None:
        want = "an EIP-55 checksummed 0x address" if envelope.scheme == "eip712" else "a base58 Solana address"
        raise BadRequest(f"the {envelope.scheme} scheme needs {want} as signer", code="invalid_address")
    message = decode_message(envelope.type, envelope.message)
    message_json = message_to_json(message)
    named = message_json[SIGNER_FIELD[envelope.type]]
    if named != envelope.signer:
        raise Forbidden(f"the envelope's signer {envelope.signer} is not the message's "
                        f"{SIGNER_FIELD[envelope.type]} {named}", code="signer_mismatch")
    digest = encoder.digest(envelope.type, message_json)
    if envelope.scheme == "eip712":
        if _recover_evm(digest, envelope.signature) != envelope.signer:
            raise Forbidden("the signature does not verify for this signer and this deployment",
                            code="bad_signature")
    else:
        _verify_ed25519(canonical_json(encoder.domain, envelope.type, message_json), envelope.signer,
                        envelope.signature)
    return VerifiedMessage(primary_type=envelope.type, scheme=envelope.scheme, signer=envelope.signer,
                           message=message, message_json=message_json, digest=digest,
                           signature=envelope.signature)
