"""The cached EIP-712 encoder equals eth-account's encode_typed_data on any message."""

from __future__ import annotations

import secrets

from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.typed_data import EIP712_DOMAIN_TYPE, TYPES, Domain, TypedDataEncoder, canonical_json

DOMAIN = Domain(name="AST DAO ✓", chain_id=31337, salt="0x" + secrets.token_hex(32))
ENC = TypedDataEncoder(DOMAIN)

text = st.text(max_size=40)
u256 = st.integers(0, 2**256 - 1)
u64 = st.integers(0, 2**64 - 1)
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


def eth_account_digest(primary: str, message: dict) -> bytes:
    types = {"EIP712Domain": EIP712_DOMAIN_TYPE, primary: TYPES[primary]}
    if primary == "AllocationChange":
        types["Share"] = TYPES["Share"]
    signable = encode_typed_data(full_message={"types": types, "primaryType": primary,
                                               "domain": DOMAIN.as_json(), "message": message})
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(MESSAGES)).flatmap(lambda p: st.tuples(st.just(p), MESSAGES[p])))
def test_digest_matches_eth_account(case) -> None:
    primary, message = case
    wire = {k: (str(v) if k in ("price", "amount") else v) for k, v in message.items()}
    assert ENC.digest(primary, wire) == eth_account_digest(primary, message)


def test_canonical_json_is_sorted_compact_and_unescaped() -> None:
    raw = canonical_json(DOMAIN, "Cancel", {"timestamp": 1, "signer": "ü", "proposal": "0x" + "00" * 32})
    text = raw.decode()
    assert text.startswith('{"domain":{"chainId":31337,"name":"AST DAO ✓","salt":')
    assert '"message":{"proposal":' in text and '"signer":"ü","timestamp":1}' in text
    assert text.endswith(',"type":"Cancel"}')
    assert " " not in text.replace("AST DAO ✓", "") and "\\u" not in text
