"""Verifying signed envelopes from both wallet families (pure).

| scheme      | signer                                   | signature                    |
|-------------|------------------------------------------|------------------------------|
| ``eip712``  | EIP-55 checksummed 0x address (an EOA)   | 0x + 65 bytes r‖s‖v, low s   |
| ``ed25519`` | base58 of a 32-byte public key (Solana)  | base58 of 64 bytes           |

The record id is the EIP-712 digest of the message under the deployment's domain, whichever
scheme signed it, so one logical message has one id.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

import base58
import msgspec
from coincurve import PublicKey
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from governance.errors import BadRequest, Forbidden, Unprocessable
from governance.hashing import keccak
from governance.typed_data import (
    SIGNER_FIELD,
    TypedDataEncoder,
    TypedMessage,
    canonical_json,
    decode_message,
    message_to_json,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

_EVM = re.compile(r"0x[0-9a-fA-F]{40}")
_EIP712_SIG = re.compile(r"0x[0-9a-fA-F]{130}")  # fullmatch: bytes.fromhex alone would skip spaces


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """Every signed submission: the message, who signed it, how, and the signature."""

    type: str
    scheme: Literal["eip712", "ed25519"]
    signer: str
    signature: str
    message: dict[str, Any]


@dataclass(frozen=True)
class VerifiedMessage:
    """A message whose signature verified under this deployment's domain."""

    primary_type: str
    scheme: str
    signer: str  # canonical form: EIP-55 checksummed, or base58
    message: TypedMessage
    message_json: dict[str, Any]
    digest: bytes  # the EIP-712 digest: the record id ("0x" + hex) of a proposal or a vote
    signature: str  # as received


def checksum_address(lower_hex40: str) -> str:
    """The EIP-55 form of an address given as 40 lower-case hex digits (no ``0x``)."""
    # EIP-55 by hand: eth_utils.to_checksum_address costs ~17 µs, this a third of that
    nibbles = keccak(lower_hex40.encode()).hex()
    return "0x" + "".join(c.upper() if n in "89abcdef" else c for c, n in zip(lower_hex40, nibbles[:40], strict=True))


def is_checksum_address(s: Any) -> bool:
    """True for ``0x`` + 40 hex digits in EIP-55 mixed case (all-digit addresses included)."""
    return isinstance(s, str) and _EVM.fullmatch(s) is not None and checksum_address(s[2:].lower()) == s


def is_solana_address(s: Any) -> bool:
    """True for the base58 form of exactly 32 bytes (an ed25519 public key), written exactly as
    base58 encodes them: nothing before or after, no leading ``1`` beyond the key's zero bytes."""
    # the length check comes first: it bounds the base58 work and what the cache may hold
    return isinstance(s, str) and 32 <= len(s) <= 44 and solana_public_key(s) is not None


@functools.lru_cache(maxsize=4096)
def solana_public_key(s: str) -> bytes | None:
    """The 32-byte public key ``s`` (32 to 44 characters) is the base58 of, else None. Cached:
    one vote checks its signer's form up to three times (the envelope, the message's voter, the
    verification), and base58 decoding in Python is a tenth of an ed25519 vote's cost."""
    raw = _b58_exact(s)
    return raw if raw is not None and len(raw) == 32 else None


def _b58_exact(s: str) -> bytes | None:
    """The bytes ``s`` is the base58 of, only if ``s`` is exactly their encoding, else None.

    ``base58.b58decode`` strips surrounding whitespace: ``"ADDR "`` and ``"ADDR\\n"`` decode like
    ``"ADDR"``. Taken as they are, one key would have several identities, and the extra ones
    escape every exact-match list (guardians, excluded accounts, holder lists).
    """
    try:
        raw = base58.b58decode(s)
    except ValueError:  # not a base58 digit (or not ASCII)
        return None
    return raw if base58.b58encode(raw).decode() == s else None


def address_kind(s: Any) -> Literal["evm", "solana"] | None:
    """``evm`` for an EIP-55 checksummed address, ``solana`` for base58 of 32 bytes, else None."""
    if is_checksum_address(s):
        return "evm"
    if is_solana_address(s):
        return "solana"
    return None


def normalize_address(s: Any) -> str:
    """The address as stored: exactly as given once its form is valid (400 ``invalid_address``).

    An EVM address must already be checksummed: a lower-case one may be a typo we cannot see.
    """
    if address_kind(s) is None:
        raise BadRequest(f"{s!r} is neither an EIP-55 checksummed 0x address nor a base58 Solana address",
                         code="invalid_address")
    return s


def check_freshness(timestamp: int, now: int, max_skew: int) -> None:
    """The signed timestamp must lie within ``max_skew`` seconds of the server's clock (422)."""
    window = f"the server time is {now} and it accepts {now - max_skew}..{now + max_skew} (±{max_skew} s)"
    if timestamp < now - max_skew:
        raise Unprocessable(f"the signed timestamp {timestamp} is too old: {window}", code="stale_timestamp")
    if timestamp > now + max_skew:
        raise Unprocessable(f"the signed timestamp {timestamp} is in the future: {window}",
                            code="future_timestamp")


def recover_evm_address(digest: bytes, signature: str) -> str:
    """The lower-case hex (no 0x) of the address that signed ``digest``."""
    if not _EIP712_SIG.fullmatch(signature):
        raise BadRequest("an eip712 signature is 0x followed by 65 bytes (130 hex digits)",
                         code="malformed_signature")
    raw = bytes.fromhex(signature[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (0, 1, 27, 28):
        raise BadRequest(f"signature v is {v}; it must be 27 or 28 (or 0 or 1)", code="malformed_signature")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise BadRequest("signature r or s is zero or not below the curve order", code="malformed_signature")
    if s > HALF_N:
        # the malleable twin of a low-s signature: it would give one message two signatures
        raise BadRequest("signature s is in the upper half of the curve order", code="high_s_signature")
    try:
        pub = PublicKey.from_signature_and_message(raw[:64] + bytes([v % 27]), digest, hasher=None)
    except ValueError as exc:  # no point on the curve for this r
        raise Forbidden("the signature does not verify", code="bad_signature") from exc
    return keccak(pub.format(compressed=False)[1:])[-20:].hex()


def verify_ed25519(payload: bytes, signer: str, signature: str) -> None:
    """Check a base58 ed25519 ``signature`` of ``payload`` by the Solana address ``signer``
    (400 if either is malformed, 403 ``bad_signature`` if it does not verify)."""
    # 64 bytes are at most 88 base58 digits; the bound keeps a huge string from costing time.
    # Exact: a signature is stored as received, so one signature has one written form.
    sig = (_b58_exact(signature) if len(signature) <= 88 else None) or b""
    if len(sig) != 64:
        raise BadRequest("an ed25519 signature is base58 of exactly 64 bytes", code="malformed_signature")
    if not is_solana_address(signer):  # verify_envelope checked it first: a decoded key is cached
        raise BadRequest(f"{signer!r} is not a base58 Solana address (32 bytes)", code="invalid_address")
    try:
        VerifyKey(solana_public_key(signer)).verify(payload, sig)
    except CryptoError as exc:
        raise Forbidden("the signature does not verify for this signer and this deployment",
                        code="bad_signature") from exc


def verify_envelope(envelope: Envelope, encoder: TypedDataEncoder) -> VerifiedMessage:
    """Check an envelope against this deployment's domain; returns the verified message.

    Order of checks: the signer's form for the scheme (400 ``invalid_address``), the message's
    type and schema (400 ``unknown_type`` / ``invalid_message``), the signer named in the
    message (403 ``signer_mismatch``), the signature's form (400 ``malformed_signature`` /
    ``high_s_signature``), the signature itself (403 ``bad_signature``; a signature made for
    another deployment, chain id or salt fails here).
    """
    kind = address_kind(envelope.signer)
    if kind != ("evm" if envelope.scheme == "eip712" else "solana"):
        want = ("an EIP-55 checksummed 0x address" if envelope.scheme == "eip712"
                else "a base58 Solana address (32 bytes)")
        raise BadRequest(f"the {envelope.scheme} scheme needs {want} as signer, not {envelope.signer!r}",
                         code="invalid_address")
    message = decode_message(envelope.type, envelope.message)
    message_json = message_to_json(message)
    field = SIGNER_FIELD[envelope.type]
    if message_json[field] != envelope.signer:
        raise Forbidden(f"the envelope's signer {envelope.signer} is not the message's {field} "
                        f"{message_json[field]!r}", code="signer_mismatch")
    digest = encoder.digest(envelope.type, message_json)
    if envelope.scheme == "eip712":
        if recover_evm_address(digest, envelope.signature) != envelope.signer[2:].lower():
            raise Forbidden("the signature does not verify for this signer and this deployment",
                            code="bad_signature")
    else:
        verify_ed25519(canonical_json(encoder.domain, envelope.type, message_json), envelope.signer,
                       envelope.signature)
    return VerifiedMessage(primary_type=envelope.type, scheme=envelope.scheme, signer=envelope.signer,
                           message=message, message_json=message_json, digest=digest,
                           signature=envelope.signature)


def verify_accepted(envelope: Envelope, encoder: TypedDataEncoder, accepted: tuple[str, ...]) -> VerifiedMessage:
    """:func:`verify_envelope` for an endpoint that takes only the message types ``accepted``
    (400 ``wrong_message_type`` for another, before any signature work)."""
    if envelope.type not in accepted:
        raise BadRequest(f"this endpoint takes {' or '.join(accepted)}, not {envelope.type!r}",
                         code="wrong_message_type")
    return verify_envelope(envelope, encoder)
