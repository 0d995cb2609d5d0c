"""EIP-712 typed data for every signed message, and the canonical JSON ed25519 signs (pure).

The server rebuilds the typed data from its own domain and types; a client never chooses
them. Every message is decoded into a strict schema *before* hashing: EIP-712 hashes only
declared fields, and common encoders hash a missing string as empty and a short ``bytes32``
as padded, so only the schema catches those.

:class:`TypedDataEncoder` computes the domain separator and every type hash once, then
hashes a message with one keccak per string, per struct and per array. It is checked against
eth-account's ``encode_typed_data`` (tests/unit/test_typed_data.py) and against ethers
(tests/unit/test_js_vectors.py), and costs a fraction of the former.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from governance.errors import BadRequest
from governance.hashing import keccak
from governance.types import UINT256_MAX

UINT64_MAX = 2**64 - 1

EIP712_DOMAIN_TYPE: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "salt", "type": "bytes32"},
]


def _fields(spec: str) -> list[dict[str, str]]:
    return [{"name": n, "type": t} for t, n in (f.split(" ") for f in spec.split(","))]


# Field order is part of each type's hash: never reorder, only add new types.
TYPES: dict[str, list[dict[str, str]]] = {
    "PriceChange": _fields("string proposer,string title,string description,uint256 price,uint64 timestamp"),
    "AllocationChange": _fields("string proposer,string title,string description,Share[] shares,uint64 timestamp"),
    "Share": _fields("string bucket,uint16 bps"),
    "TreasurySpend": _fields("string proposer,string title,string description,string bucket,string asset,"
                             "string recipient,uint256 amount,uint64 timestamp"),
    "Vote": _fields("string voter,bytes32 proposal,uint8 choice,string reason,uint64 timestamp"),
    "Cancel": _fields("string signer,bytes32 proposal,uint64 timestamp"),
}

SIGNER_FIELD: dict[str, str] = {"PriceChange": "proposer", "AllocationChange": "proposer",
                                "TreasurySpend": "proposer", "Vote": "voter", "Cancel": "signer"}

# JSON forms. msgspec applies `pattern` with re.search, where `$` also matches before a final
# "\n": the fixed length closes that for bytes32, and TypedMessage.__post_init__ for uint256.
# (`\Z` would do it too, but these patterns also end up in JSON Schema, which has no `\Z`.)
Uint256 = Annotated[str, Meta(pattern=r"^(0|[1-9][0-9]*)$", min_length=1, max_length=78,
                              description="uint256 as a decimal string, no sign or leading zeros")]
Uint64 = Annotated[int, Meta(ge=0, description="uint64")]  # msgspec bounds stop at int64: see __post_init__
Uint16 = Annotated[int, Meta(ge=0, le=2**16 - 1)]
Uint8 = Annotated[int, Meta(ge=0, le=2**8 - 1)]
Bytes32 = Annotated[str, Meta(pattern=r"^0x[0-9a-f]{64}$", min_length=66, max_length=66,
                              description="32 bytes as lowercase 0x hex")]


class TypedMessage(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every signed message: its fields are exactly the EIP-712 type's fields."""

    def __post_init__(self) -> None:
        # what the annotations cannot say; a ValueError here becomes a msgspec.ValidationError
        for name, kind in _CHECKS[type(self).__name__]:
            value = getattr(self, name)
            if kind == "uint256" and not (value.isascii() and value.isdigit() and int(value) <= UINT256_MAX):
                raise ValueError(f"`{name}` must be a decimal string of a uint256")
            if kind == "uint64" and value > UINT64_MAX:
                raise ValueError(f"`{name}` exceeds uint64")
            if kind == "string":
                try:
                    value.encode()
                except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form to hash or sign
                    raise ValueError(f"`{name}` is not valid Unicode") from None


class PriceChange(TypedMessage):
    proposer: str
    title: str
    description: str
    price: Uint256
    timestamp: Uint64


class Share(TypedMessage):
    bucket: str
    bps: Uint16


class AllocationChange(TypedMessage):
    proposer: str
    title: str
    description: str
    shares: list[Share]
    timestamp: Uint64


class TreasurySpend(TypedMessage):
    proposer: str
    title: str
    description: str
    bucket: str
    asset: str
    recipient: str
    amount: Uint256
    timestamp: Uint64


class Vote(TypedMessage):
    voter: str
    proposal: Bytes32
    choice: Uint8
    reason: str
    timestamp: Uint64


class Cancel(TypedMessage):
    signer: str
    proposal: Bytes32
    timestamp: Uint64


_CHECKS = {name: [(f["name"], f["type"]) for f in fields if f["type"] in ("uint256", "uint64", "string")]
           for name, fields in TYPES.items()}

MESSAGE_TYPES: dict[str, type[TypedMessage]] = {
    "PriceChange": PriceChange, "AllocationChange": AllocationChange, "TreasurySpend": TreasurySpend,
    "Vote": Vote, "Cancel": Cancel,
}

_SALT = re.compile(r"0x[0-9a-f]{64}")


class Domain(msgspec.Struct, frozen=True, kw_only=True):
    """The deployment's EIP-712 domain; the salt makes signatures deployment-specific."""

    name: str
    version: str = "1"
    chain_id: int
    salt: str

    def __post_init__(self) -> None:
        if not _SALT.fullmatch(self.salt):
            raise ValueError("the domain salt is lowercase 0x followed by 32 bytes of hex")
        if not 0 <= self.chain_id <= UINT256_MAX:
            raise ValueError("the domain chain id is a uint256")

    def as_json(self) -> dict[str, Any]:
        """The domain as EIP-712 clients and the canonical JSON spell it."""
        return {"name": self.name, "version": self.version, "chainId": self.chain_id, "salt": self.salt}


def decode_message(primary_type: str, raw: Any) -> TypedMessage:
    """The message in its strict schema; 400 ``invalid_message`` naming the first problem
    (msgspec stops at the first), or 400 ``unknown_type``."""
    cls = MESSAGE_TYPES.get(primary_type)
    if cls is None:
        raise BadRequest(f"unknown message type {primary_type!r}; one of {', '.join(MESSAGE_TYPES)}",
                         code="unknown_type")
    try:
        return msgspec.convert(raw, cls, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"{primary_type} message: {exc}", code="invalid_message") from exc


def message_to_json(message: TypedMessage) -> dict[str, Any]:
    """The message's JSON form (builtin types only), as signed and as stored."""
    return msgspec.to_builtins(message)


def encode_type(primary: str) -> str:
    """EIP-712 ``encodeType``: the type, then every type it references, sorted by name."""
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


def _string(value: str) -> bytes:
    return keccak(value.encode())


def _uint(value: int | str) -> bytes:
    return int(value).to_bytes(32, "big")


def _bytes32(value: str) -> bytes:
    return bytes.fromhex(value[2:])


class TypedDataEncoder:
    """EIP-712 hashing for one domain, with the domain separator and type hashes cached.

    It trusts its input: pass only ``message_to_json(decode_message(...))``.
    """

    def __init__(self, domain: Domain):
        self.domain = domain
        self.type_hashes = {name: keccak(encode_type(name).encode()) for name in TYPES}
        domain_type = "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in EIP712_DOMAIN_TYPE) + ")"
        self.domain_separator = keccak(
            keccak(domain_type.encode()) + _string(domain.name) + _string(domain.version)
            + _uint(domain.chain_id) + _bytes32(domain.salt))
        # one (field name, word encoder) list per type: no type dispatch per message
        self._plans: dict[str, list[tuple[str, Callable[[Any], bytes]]]] = {
            name: [(f["name"], self._word(f["type"])) for f in fields] for name, fields in TYPES.items()}

    def _word(self, typ: str) -> Callable[[Any], bytes]:
        if typ == "string":
            return _string
        if typ.startswith("uint"):
            return _uint
        if typ == "bytes32":
            return _bytes32
        if typ.endswith("[]"):
            inner = self._word(typ[:-2])
            return lambda items: keccak(b"".join(map(inner, items)))
        if typ in TYPES:
            return lambda value: self.hash_struct(typ, value)
        raise ValueError(f"no encoder for EIP-712 type {typ}")

    def hash_struct(self, primary_type: str, message_json: dict[str, Any]) -> bytes:
        """EIP-712 ``hashStruct``: keccak256(typeHash ‖ encodeData(message))."""
        words = b"".join(enc(message_json[name]) for name, enc in self._plans[primary_type])
        return keccak(self.type_hashes[primary_type] + words)

    def digest(self, primary_type: str, message_json: dict[str, Any]) -> bytes:
        """keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)): what an EOA signs, and the
        record id whichever scheme signed."""
        return keccak(b"\x19\x01" + self.domain_separator + self.hash_struct(primary_type, message_json))


def canonical_json(domain: Domain, primary_type: str, message_json: dict[str, Any]) -> bytes:
    """What an ed25519 (Solana) wallet signs: readable, and identical byte for byte anywhere.

    Keys sorted at every level, separators ``,`` and ``:``, UTF-8 with non-ASCII characters as
    themselves; control characters are escaped the way JSON requires (``\\n``, ``\\u001f``),
    as JavaScript's ``JSON.stringify`` does.
    """
    return canonical_bytes({"domain": domain.as_json(), "message": message_json, "type": primary_type})


_SORTED_JSON = msgspec.json.Encoder(order="sorted")


def canonical_bytes(doc: Any) -> bytes:
    """JSON with keys sorted at every level and no whitespace, UTF-8 with non-ASCII characters
    as themselves: byte for byte ``json.dumps(doc, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` (tests/unit/test_typed_data.py checks that), at a tenth of the cost."""
    return _SORTED_JSON.encode(doc)


def canonical_text(doc: Any) -> str:
    """A signed message as stored: :func:`canonical_bytes` as text."""
    return canonical_bytes(doc).decode()


def typed_data_document(domain: Domain) -> dict[str, Any]:
    """``GET /v1/signing``: the domain and all types exactly as the server verifies them."""
    return {
        "domain": domain.as_json(),
        "primaryTypes": list(MESSAGE_TYPES),
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **TYPES},
        "signerField": SIGNER_FIELD,
        "jsonForms": {"uint256": "decimal string (no sign, no leading zeros)",
                      "uint64, uint16, uint8": "JSON number", "bytes32": "lowercase 0x hex"},
        "eip712": {"signer": "EIP-55 checksummed 0x address",
                   "signature": "0x + 65 bytes r||s||v hex; v 27 or 28 (0 or 1 accepted); s in the lower half",
                   "types": "pass only the primary type and the types it references "
                            "(ethers: also without EIP712Domain)"},
        "ed25519": {"encoding": "utf-8 canonical JSON",
                    "document": '{"domain":…,"message":…,"type":…}',
                    "rules": "keys sorted at every level, separators , and :, no whitespace, "
                             "no \\u escapes (non-ASCII as itself; control characters escaped as JSON requires)",
                    "signer": "base58 of the 32-byte public key (a Solana address)",
                    "signature": "base58 of the 64-byte signature"},
    }
