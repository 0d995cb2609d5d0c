"""EIP-712 typed data for every signed message, and the canonical JSON ed25519 signs (pure).

The server rebuilds the typed data from its own domain and types; a client never chooses
them. Every message is decoded into a strict schema *before* hashing: EIP-712 hashes only
declared fields, and common encoders hash a missing string as empty and a short ``bytes32``
as padded, so only the schema catches those.

The encoder here computes the domain separator and every type hash once, then hashes a
message with a handful of keccak calls; it is checked against eth-account's
``encode_typed_data`` (tests/unit/test_typed_data.py) and costs a fraction of it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from eth_hash.auto import keccak
from msgspec import Meta

from governance.errors import BadRequest

UINT256_MAX = 2**256 - 1
UINT64_MAX = 2**64 - 1

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "salt", "type": "bytes32"},
]

# Field order is part of each type's hash.
TYPES: dict[str, list[dict[str, str]]] = {
    "PriceChange": [
        {"name": "proposer", "type": "string"}, {"name": "title", "type": "string"},
        {"name": "description", "type": "string"}, {"name": "price", "type": "uint256"},
        {"name": "timestamp", "type": "uint64"},
    ],
    "AllocationChange": [
        {"name": "proposer", "type": "string"}, {"name": "title", "type": "string"},
        {"name": "description", "type": "string"}, {"name": "shares", "type": "Share[]"},
        {"name": "timestamp", "type": "uint64"},
    ],
    "Share": [{"name": "bucket", "type": "string"}, {"name": "bps", "type": "uint16"}],
    "TreasurySpend": [
        {"name": "proposer", "type": "string"}, {"name": "title", "type": "string"},
        {"name": "description", "type": "string"}, {"name": "bucket", "type": "string"},
        {"name": "asset", "type": "string"}, {"name": "recipient", "type": "string"},
        {"name": "amount", "type": "uint256"}, {"name": "timestamp", "type": "uint64"},
    ],
    "Vote": [
        {"name": "voter", "type": "string"}, {"name": "proposal", "type": "bytes32"},
        {"name": "choice", "type": "uint8"}, {"name": "reason", "type": "string"},
        {"name": "timestamp", "type": "uint64"},
    ],
    "Cancel": [
        {"name": "signer", "type": "string"}, {"name": "proposal", "type": "bytes32"},
        {"name": "timestamp", "type": "uint64"},
    ],
}

SIGNER_FIELD = {"PriceChange": "proposer", "AllocationChange": "proposer", "TreasurySpend": "proposer",
                "Vote": "voter", "Cancel": "signer"}

# JSON forms: uint256 as a decimal string, smaller integers as numbers, bytes32 lowercase hex.
Uint256 = Annotated[str, Meta(pattern=r"^(0|[1-9][0-9]{0,77})$", description="uint256 as a decimal string")]
Uint64 = Annotated[int, Meta(ge=0)]  # upper bound checked in decode_message (msgspec bounds are int64)
Uint16 = Annotated[int, Meta(ge=0, le=2**16 - 1)]
Uint8 = Annotated[int, Meta(ge=0, le=2**8 - 1)]
Bytes32 = Annotated[str, Meta(pattern=r"^0x[0-9a-f]{64}$", description="32 bytes, lowercase 0x hex")]


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    pass


class PriceChange(_Message):
    proposer: str
    title: str
    description: str
    price: Uint256
    timestamp: Uint64


class Share(_Message):
    bucket: str
    bps: Uint16


class AllocationChange(_Message):
    proposer: str
    title: str
    description: str
    shares: list[Share]
    timestamp: Uint64


class TreasurySpend(_Message):
    proposer: str
    title: str
    description: str
    bucket: str
    asset: str
    recipient: str
    amount: Uint256
    timestamp: Uint64


class Vote(_Message):
    voter: str
    proposal: Bytes32
    choice: Uint8
    reason: str
    timestamp: Uint64


class Cancel(_Message):
    signer: str
    proposal: Bytes32
    timestamp: Uint64


MESSAGE_TYPES: dict[str, type[_Message]] = {
    "PriceChange": PriceChange, "AllocationChange": AllocationChange, "TreasurySpend": TreasurySpend,
    "Vote": Vote, "Cancel": Cancel,
}


class Domain(msgspec.Struct, frozen=True):
    """The deployment's EIP-712 domain; the salt makes signatures deployment-specific."""

    name: str
    chain_id: int
    salt: str
    version: str = "1"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "chainId": self.chain_id, "salt": self.salt}


def decode_message(primary_type: str, raw: Any) -> _Message:
    """The message in its strict schema; 400 ``invalid_message`` naming the first problem."""
    cls = MESSAGE_TYPES.get(primary_type)
    if cls is None:
        raise BadRequest(f"unknown message type {primary_type!r}; one of {', '.join(MESSAGE_TYPES)}",
                         code="unknown_type")
    try:
        msg = msgspec.convert(raw, cls, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"{primary_type} message: {exc}", code="invalid_message") from exc
    for f in TYPES[primary_type]:
        if f["type"] == "uint256" and int(getattr(msg, f["name"])) > UINT256_MAX:
            raise BadRequest(f"{primary_type} message: {f['name']} exceeds uint256", code="invalid_message")
        if f["type"] == "uint64" and getattr(msg, f["name"]) > UINT64_MAX:
            raise BadRequest(f"{primary_type} message: {f['name']} exceeds uint64", code="invalid_message")
    return msg


def message_to_json(message: _Message) -> dict[str, Any]:
    return msgspec.to_builtins(message)


def _encode_type(primary: str) -> str:
    deps: set[str] = set()
    todo = [primary]
    while todo:
        for f in TYPES[todo.pop()]:
            base = f["type"].removesuffix("[]")
            if base in TYPES and base != primary and base not in deps:
                deps.add(base)
                todo.append(base)

    def one(name: str) -> str:
        return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in TYPES[name]) + ")"

    return one(primary) + "".join(one(d) for d in sorted(deps))


class TypedDataEncoder:
    """EIP-712 hashing for one domain, with the domain separator and type hashes cached."""

    def __init__(self, domain: Domain):
        self.domain = domain
        self.type_hashes = {name: keccak(_encode_type(name).encode()) for name in TYPES}
        domain_type_hash = keccak(b"EIP712Domain(string name,string version,uint256 chainId,bytes32 salt)")
        self.domain_separator = keccak(
            domain_type_hash + keccak(domain.name.encode()) + keccak(domain.version.encode())
            + domain.chain_id.to_bytes(32, "big") + bytes.fromhex(domain.salt[2:])
        )

    def _field(self, typ: str, value: Any) -> bytes:
        if typ == "string":
            return keccak(value.encode())
        if typ.startswith("uint"):
            return int(value).to_bytes(32, "big")
        if typ == "bytes32":
            return bytes.fromhex(value[2:])
        if typ.endswith("[]"):
            inner = typ[:-2]
            return keccak(b"".join(self._field(inner, v) for v in value))
        return self.hash_struct(typ, value)  # a struct type

    def hash_struct(self, primary_type: str, message: dict[str, Any]) -> bytes:
        parts = [self.type_hashes[primary_type]]
        parts.extend(self._field(f["type"], message[f["name"]]) for f in TYPES[primary_type])
        return keccak(b"".join(parts))

    def digest(self, primary_type: str, message: dict[str, Any]) -> bytes:
        """keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)): what an EOA signs."""
        return keccak(b"\x19\x01" + self.domain_separator + self.hash_struct(primary_type, message))


def canonical_json(domain: Domain, primary_type: str, message: dict[str, Any]) -> bytes:
    """What an ed25519 (Solana) wallet signs: readable, and identical byte for byte anywhere."""
    doc = {"domain": domain.as_json(), "message": message, "type": primary_type}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def typed_data_document(domain: Domain) -> dict[str, Any]:
    """``GET /v1/signing``: the domain and all types exactly as the server verifies them."""
    return {
        "domain": domain.as_json(),
        "primaryTypes": list(MESSAGE_TYPES),
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **TYPES},
        "signerField": SIGNER_FIELD,
        "schemes": {
            "eip712": {"signer": "EIP-55 checksummed 0x address",
                       "signature": "0x + 65 bytes r||s||v hex; v 27/28 (0/1 accepted); low s only"},
            "ed25519": {"signer": "base58 of the 32-byte public key (a Solana address)",
                        "signature": "base58 of the 64-byte signature",
                        "signedBytes": 'UTF-8 canonical JSON of {"domain":…,"message":…,"type":<primary type>}',
                        "canonicalJson": "keys sorted at every level, separators ',' and ':', no whitespace, "
                                         "non-ASCII characters as themselves (no \\u escapes)"},
        },
        "jsonForms": {"uint256": "decimal string", "uint64/uint16/uint8": "JSON number",
                      "bytes32": "lowercase 0x hex"},
    }
