"""Typed data: the cached encoder equals eth-account on any message and domain; the schema
rejects every JSON form EIP-712 encoders would silently accept; the canonical JSON is exact."""

from __future__ import annotations

import json
import secrets

import msgspec
import pytest
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import example, given, settings
from hypothesis import strategies as st

from governance.errors import BadRequest
from governance.typed_data import (
    EIP712_DOMAIN_TYPE,
    MESSAGE_TYPES,
    SIGNER_FIELD,
    TYPES,
    AllocationChange,
    Domain,
    Share,
    TypedDataEncoder,
    canonical_bytes,
    canonical_json,
    decode_message,
    encode_type,
    message_to_json,
    typed_data_document,
)

DOMAIN = Domain(name="AST DAO ✓", chain_id=31337, salt="0x" + secrets.token_hex(32))
ENC = TypedDataEncoder(DOMAIN)
MAX256, MAX64 = 2**256 - 1, 2**64 - 1
PID = "0x" + "ab" * 32

text = st.text(max_size=40)  # all of Unicode but lone surrogates, which have no UTF-8 form
u256 = st.integers(0, MAX256).map(str)
u64 = st.integers(0, MAX64)
b32 = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
shares = st.lists(st.fixed_dictionaries({"bucket": text, "bps": st.integers(0, 2**16 - 1)}), max_size=6)
MESSAGES = {
    "PriceChange": st.fixed_dictionaries({"proposer": text, "title": text, "description": text,
                                          "price": u256, "timestamp": u64}),
    "AllocationChange": st.fixed_dictionaries({"proposer": text, "title": text, "description": text,
                                               "shares": shares, "timestamp": u64}),
    "TreasurySpend": st.fixed_dictionaries({"proposer": text, "title": text, "description": text, "bucket": text,
                                            "asset": text, "recipient": text, "amount": u256, "timestamp": u64}),
    "Vote": st.fixed_dictionaries({"voter": text, "proposal": b32, "choice": st.integers(0, 255),
                                   "reason": text, "timestamp": u64}),
    "Cancel": st.fixed_dictionaries({"signer": text, "proposal": b32, "timestamp": u64}),
}
domains = st.builds(lambda name, chain, salt: Domain(name=name, chain_id=chain, salt="0x" + salt.hex()),
                    text, st.integers(0, MAX256), st.binary(min_size=32, max_size=32))
cases = st.sampled_from(sorted(MESSAGES)).flatmap(lambda p: st.tuples(st.just(p), MESSAGES[p]))


def reference_digest(domain: Domain, primary: str, message: dict) -> bytes:
    """eth-account's digest, given only the primary type and what it references (as clients do)."""
    types = {"EIP712Domain": EIP712_DOMAIN_TYPE, primary: TYPES[primary]}
    if primary == "AllocationChange":
        types["Share"] = TYPES["Share"]
    as_ints = {k: int(v) if k in ("price", "amount") else v for k, v in message.items()}
    signable = encode_typed_data(full_message={"types": types, "primaryType": primary,
                                               "domain": domain.as_json(), "message": as_ints})
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


MAXED = {"PriceChange": {"proposer": "0x" + "F" * 40, "title": "", "description": "日本語 ✓ 🚀",
                         "price": str(MAX256), "timestamp": MAX64},
         "AllocationChange": {"proposer": "p", "title": "t", "description": "d", "shares": [], "timestamp": 0},
         "TreasurySpend": {"proposer": "p", "title": "ü", "description": "", "bucket": "community", "asset": "USDC",
                           "recipient": "r", "amount": str(MAX256), "timestamp": MAX64},
         "Vote": {"voter": "v", "proposal": "0x" + "ff" * 32, "choice": 255, "reason": "", "timestamp": MAX64},
         "Cancel": {"signer": "s", "proposal": "0x" + "00" * 32, "timestamp": 0}}


@settings(max_examples=150, deadline=None)
@given(cases, domains)
@example(("AllocationChange", MAXED["AllocationChange"]), DOMAIN)
@example(("AllocationChange", {**MAXED["AllocationChange"], "shares": [{"bucket": "€", "bps": 65535}]}), DOMAIN)
@example(("PriceChange", MAXED["PriceChange"]), Domain(name="", chain_id=MAX256, salt="0x" + "ff" * 32))
@example(("TreasurySpend", MAXED["TreasurySpend"]), DOMAIN)
@example(("Vote", MAXED["Vote"]), DOMAIN)
@example(("Cancel", MAXED["Cancel"]), Domain(name="x", version="2", chain_id=0, salt="0x" + "00" * 32))
def test_digest_matches_eth_account(case, domain) -> None:
    primary, message = case
    wire = message_to_json(decode_message(primary, message))  # the schema accepts every valid message
    assert wire == message
    assert TypedDataEncoder(domain).digest(primary, wire) == reference_digest(domain, primary, message)


DESIGN_TYPES = """
PriceChange(string proposer,string title,string description,uint256 price,uint64 timestamp)
AllocationChange(string proposer,string title,string description,Share[] shares,uint64 timestamp)
Share(string bucket,uint16 bps)
TreasurySpend(string proposer,string title,string description,string bucket,string asset,string recipient,uint256 amount,uint64 timestamp)
Vote(string voter,bytes32 proposal,uint8 choice,string reason,uint64 timestamp)
Cancel(string signer,bytes32 proposal,uint64 timestamp)
"""  # noqa: E501  (copied from DESIGN.md "Identity and signatures": the contract wallets sign against)


def test_types_are_the_design_contract() -> None:
    # eth-account is given these same TYPES above, so only this catches a reordered field
    written = {line.split("(")[0]: line for line in DESIGN_TYPES.strip().splitlines()}
    assert {name: f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"
            for name, fields in TYPES.items()} == written


def test_encode_type_appends_referenced_types() -> None:
    assert encode_type("AllocationChange") == ("AllocationChange(string proposer,string title,string description,"
                                               "Share[] shares,uint64 timestamp)Share(string bucket,uint16 bps)")
    assert encode_type("Cancel") == "Cancel(string signer,bytes32 proposal,uint64 timestamp)"


def test_message_types_and_signer_fields() -> None:
    assert set(MESSAGE_TYPES) == set(SIGNER_FIELD) == set(TYPES) - {"Share"}
    for name, cls in MESSAGE_TYPES.items():
        assert list(cls.__struct_fields__) == [f["name"] for f in TYPES[name]]
        assert SIGNER_FIELD[name] in cls.__struct_fields__
    assert [f["name"] for f in EIP712_DOMAIN_TYPE] == ["name", "version", "chainId", "salt"]


def test_decode_gives_structs_and_json_gives_builtins() -> None:
    raw = {"proposer": "p", "title": "t", "description": "d", "timestamp": 1,
           "shares": [{"bucket": "compute", "bps": 10000}]}
    msg = decode_message("AllocationChange", raw)
    assert isinstance(msg, AllocationChange) and msg.shares == [Share(bucket="compute", bps=10000)]
    assert message_to_json(msg) == raw and type(message_to_json(msg)["shares"][0]) is dict


def vote(**patch) -> dict:
    return {"voter": "v", "proposal": PID, "choice": 1, "reason": "", "timestamp": 1} | patch


def spend(**patch) -> dict:
    return {"proposer": "p", "title": "t", "description": "d", "bucket": "community", "asset": "USD",
            "recipient": "r", "amount": "1", "timestamp": 1} | patch


def alloc(*share_patches: dict) -> dict:
    return {"proposer": "p", "title": "t", "description": "d", "timestamp": 1,
            "shares": [{"bucket": "compute", "bps": 1} | p for p in share_patches]}


@pytest.mark.parametrize(("primary", "raw", "field"), [
    ("Vote", vote(extra=1), "extra"),
    ("Vote", {k: v for k, v in vote().items() if k != "reason"}, "reason"),
    ("Vote", vote(choice=True), "choice"),  # bool is not an integer here
    ("Vote", vote(choice=256), "choice"),
    ("Vote", vote(choice=1.0), "choice"),
    ("Vote", vote(timestamp=-1), "timestamp"),
    ("Vote", vote(timestamp=2**64), "timestamp"),
    ("Vote", vote(timestamp=True), "timestamp"),
    ("Vote", vote(timestamp="1"), "timestamp"),
    ("Vote", vote(proposal=PID.upper().replace("0X", "0x")), "proposal"),
    ("Vote", vote(proposal="0xabcd"), "proposal"),  # eth-account would pad it
    ("Vote", vote(proposal=PID + "\n"), "proposal"),  # `$` matches before a final newline
    ("Vote", vote(proposal=PID[2:] + "ab"), "proposal"),
    ("Vote", vote(reason=None), "reason"),
    ("Vote", vote(reason="\ud800"), "reason"),  # no UTF-8 form
    ("TreasurySpend", spend(amount="0123"), "amount"),
    ("TreasurySpend", spend(amount="-1"), "amount"),
    ("TreasurySpend", spend(amount="+1"), "amount"),
    ("TreasurySpend", spend(amount=str(2**256)), "amount"),
    ("TreasurySpend", spend(amount="9" * 78), "amount"),
    ("TreasurySpend", spend(amount="1" + "0" * 78), "amount"),
    ("TreasurySpend", spend(amount=12), "amount"),  # a JSON number instead of a string
    ("TreasurySpend", spend(amount="12\n"), "amount"),
    ("TreasurySpend", spend(amount=""), "amount"),
    ("TreasurySpend", spend(amount="1e3"), "amount"),
    ("TreasurySpend", spend(amount="0x10"), "amount"),
    ("TreasurySpend", spend(amount="١٢"), "amount"),  # Arabic-Indic digits
    ("AllocationChange", alloc({"weight": 1}), "weight"),  # unknown field in a Share
    ("AllocationChange", alloc({"bps": 65536}), "shares[0]"),
    ("AllocationChange", alloc({}, {"bps": -1}), "shares[1]"),
    ("AllocationChange", {**alloc(), "shares": [{"bps": 1}]}, "bucket"),
    ("AllocationChange", {**alloc(), "shares": None}, "shares"),
])
def test_schema_rejects(primary, raw, field) -> None:
    with pytest.raises(BadRequest) as info:
        decode_message(primary, raw)
    assert info.value.code == "invalid_message"
    assert field in info.value.detail and primary in info.value.detail


@pytest.mark.parametrize("raw", [[], "x", None, 1])
def test_message_must_be_an_object(raw) -> None:
    with pytest.raises(BadRequest, match="object") as info:
        decode_message("Cancel", raw)
    assert info.value.code == "invalid_message"


def test_schema_accepts_the_bounds() -> None:
    assert decode_message("TreasurySpend", spend(amount="0")).amount == "0"
    assert decode_message("TreasurySpend", spend(amount=str(MAX256))).amount == str(MAX256)
    assert decode_message("Vote", vote(timestamp=MAX64, choice=0)).timestamp == MAX64


def test_unknown_type() -> None:
    with pytest.raises(BadRequest) as info:
        decode_message("Share", {"bucket": "b", "bps": 1})  # a struct, but not a message on its own
    assert info.value.code == "unknown_type"


@pytest.mark.parametrize("salt", ["0x" + "AB" * 32, "0x" + "ab" * 31, "ab" * 32, "0x" + "ab" * 32 + "\n"])
def test_domain_salt_form(salt) -> None:
    with pytest.raises(ValueError):
        Domain(name="d", chain_id=1, salt=salt)


def test_domain_json() -> None:
    d = Domain(name="d", chain_id=5, salt="0x" + "01" * 32)
    assert d.as_json() == {"name": "d", "version": "1", "chainId": 5, "salt": "0x" + "01" * 32}
    with pytest.raises(ValueError):
        Domain(name="d", chain_id=-1, salt=d.salt)


def test_canonical_json_is_exact() -> None:
    d = Domain(name="AST DAO ✓", chain_id=31337, salt="0x" + "00" * 32)
    msg = {"timestamp": 1, "signer": "ü 🚀 \"q\"\n\x1f", "proposal": PID}
    expected = ('{"domain":{"chainId":31337,"name":"AST DAO ✓","salt":"0x' + "00" * 32 + '","version":"1"},'
                '"message":{"proposal":"' + PID + '","signer":"ü 🚀 \\"q\\"\\n\\u001f","timestamp":1},'
                '"type":"Cancel"}')
    assert canonical_json(d, "Cancel", msg) == expected.encode("utf-8")


def test_canonical_json_sorts_nested_objects() -> None:
    raw = canonical_json(DOMAIN, "AllocationChange", message_to_json(decode_message("AllocationChange", alloc({}))))
    assert b'"shares":[{"bps":1,"bucket":"compute"}]' in raw
    assert json.loads(raw)["message"]["shares"] == [{"bps": 1, "bucket": "compute"}]


def test_signing_document() -> None:
    doc = typed_data_document(DOMAIN)
    assert doc["domain"] == DOMAIN.as_json()
    assert doc["primaryTypes"] == list(MESSAGE_TYPES)
    assert doc["types"]["EIP712Domain"] == EIP712_DOMAIN_TYPE
    assert {k: v for k, v in doc["types"].items() if k != "EIP712Domain"} == TYPES
    assert doc["ed25519"]["encoding"] == "utf-8 canonical JSON"
    assert doc["ed25519"]["document"] == '{"domain":…,"message":…,"type":…}'
    assert "keys sorted at every level" in doc["ed25519"]["rules"]
    assert msgspec.json.decode(msgspec.json.encode(doc)) == doc  # serialisable as is


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**256), 2**256) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_is_sorted_compact_json_exactly(doc) -> None:
    # what ed25519 wallets sign and what is stored: the encoder must not differ from the
    # definition in one byte (key order, escapes, non-ASCII, big integers)
    want = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_bytes(doc) == want
