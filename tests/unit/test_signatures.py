"""Envelope verification with real keys: what is accepted, and each rejection's code."""

from __future__ import annotations

import secrets

import base58
import msgspec
import pytest
from eth_account import Account

from governance.errors import BadRequest, Forbidden, GovernanceError, Unprocessable
from governance.signatures import SECP256K1_N, Envelope, check_freshness, verify_envelope
from governance.typed_data import Domain, TypedDataEncoder
from tests.support import Wallet, proposal_message, vote_message

DOMAIN = Domain(name="AST DAO", chain_id=31337, salt="0x" + secrets.token_hex(32))
ENC = TypedDataEncoder(DOMAIN)
NOW = 1_800_000_000
PID = "0x" + "ab" * 32


def env(d: dict) -> Envelope:
    return msgspec.convert(d, Envelope)


def fails(d: dict, cls: type[GovernanceError], code: str) -> None:
    with pytest.raises(cls) as info:
        verify_envelope(env(d), ENC)
    assert info.value.code == code, info.value.detail


@pytest.mark.parametrize("make", [Wallet.evm, Wallet.solana])
@pytest.mark.parametrize("kind", ["PriceChange", "AllocationChange", "TreasurySpend", "Vote", "Cancel"])
def test_valid_envelopes_verify(make, kind) -> None:
    w = make()
    if kind == "Vote":
        msg = vote_message(w.address, PID, 1, NOW, reason="für")
    elif kind == "Cancel":
        msg = {"signer": w.address, "proposal": PID, "timestamp": NOW}
    else:
        msg = proposal_message(kind, w.address, NOW, title="Preis ändern ✓")
    v = verify_envelope(env(w.sign(DOMAIN, kind, msg)), ENC)
    assert v.signer == w.address and v.primary_type == kind
    assert v.digest == ENC.digest(kind, msg)  # the id is the EIP-712 digest for both schemes


def test_ids_are_scheme_independent() -> None:
    msg = vote_message("x", PID, 1, NOW)
    assert ENC.digest("Vote", msg) == ENC.digest("Vote", dict(msg))


def test_changed_message_or_signature_fails() -> None:
    for w in (Wallet.evm(), Wallet.solana()):
        d = w.sign(DOMAIN, "Vote", vote_message(w.address, PID, 1, NOW))
        d["message"]["choice"] = 0
        fails(d, Forbidden, "bad_signature")


def test_flipped_signature_byte_fails() -> None:
    w = Wallet.evm()
    d = w.sign(DOMAIN, "Vote", vote_message(w.address, PID, 1, NOW))
    raw = bytearray(bytes.fromhex(d["signature"][2:]))
    raw[5] ^= 0x01
    d["signature"] = "0x" + raw.hex()
    fails(d, Forbidden, "bad_signature")
    s = Wallet.solana()
    d = s.sign(DOMAIN, "Vote", vote_message(s.address, PID, 1, NOW))
    raw = bytearray(base58.b58decode(d["signature"]))
    raw[5] ^= 0x01
    d["signature"] = base58.b58encode(bytes(raw)).decode()
    fails(d, Forbidden, "bad_signature")


def test_high_s_is_rejected() -> None:
    w = Wallet.evm()
    d = w.sign(DOMAIN, "Vote", vote_message(w.address, PID, 1, NOW))
    raw = bytes.fromhex(d["signature"][2:])
    s = int.from_bytes(raw[32:64], "big")
    v = raw[64]
    twin = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    d["signature"] = "0x" + twin.hex()
    fails(d, BadRequest, "high_s_signature")


@pytest.mark.parametrize("mangle", [
    lambda s: s[:-2],  # truncated
    lambda s: s[:-2] + "1d",  # v = 29
    lambda s: s[2:],  # no 0x
    lambda s: "0x" + "zz" * 65,
    lambda s: "0x" + "00" * 65,  # r = s = 0
])
def test_malformed_eip712_signatures(mangle) -> None:
    w = Wallet.evm()
    d = w.sign(DOMAIN, "Vote", vote_message(w.address, PID, 1, NOW))
    d["signature"] = mangle(d["signature"])
    fails(d, BadRequest, "malformed_signature")


def test_v_zero_or_one_is_accepted() -> None:
    w = Wallet.evm()
    d = w.sign(DOMAIN, "Vote", vote_message(w.address, PID, 1, NOW))
    raw = bytes.fromhex(d["signature"][2:])
    d["signature"] = "0x" + (raw[:64] + bytes([raw[64] - 27])).hex()
    assert verify_envelope(env(d), ENC).signer == w.address


def test_truncated_ed25519_signature() -> None:
    s = Wallet.solana()
    d = s.sign(DOMAIN, "Vote", vote_message(s.address, PID, 1, NOW))
    d["signature"] = base58.b58encode(base58.b58decode(d["signature"])[:63]).decode()
    fails(d, BadRequest, "malformed_signature")


def test_scheme_and_address_must_pair() -> None:
    e, s = Wallet.evm(), Wallet.solana()
    d = e.sign(DOMAIN, "Vote", vote_message(e.address, PID, 1, NOW))
    d["scheme"] = "ed25519"
    fails(d, BadRequest, "invalid_address")
    d = s.sign(DOMAIN, "Vote", vote_message(s.address, PID, 1, NOW))
    d["scheme"] = "eip712"
    fails(d, BadRequest, "invalid_address")


def test_lowercase_evm_address_is_rejected() -> None:
    acct = Account.create()
    w = Wallet("eip712", acct.address.lower(), acct)
    fails(w.sign(DOMAIN, "Vote", vote_message(w.address, PID, 1, NOW)), BadRequest, "invalid_address")


def test_signer_must_be_named_in_the_message() -> None:
    a, b = Wallet.evm(), Wallet.evm()
    d = a.sign(DOMAIN, "Vote", vote_message(b.address, PID, 1, NOW))
    fails(d, Forbidden, "signer_mismatch")


@pytest.mark.parametrize("domain", [
    Domain(name="AST DAO", chain_id=31337, salt="0x" + "00" * 32),
    Domain(name="AST DAO", chain_id=1, salt=DOMAIN.salt),
    Domain(name="Other DAO", chain_id=31337, salt=DOMAIN.salt),
])
def test_other_deployments_do_not_verify(domain) -> None:
    for w in (Wallet.evm(), Wallet.solana()):
        fails(w.sign(domain, "Vote", vote_message(w.address, PID, 1, NOW)), Forbidden, "bad_signature")


@pytest.mark.parametrize(("patch", "why"), [
    ({"extra": 1}, "unknown field"),
    ({"choice": True}, "bool for uint8"),
    ({"choice": 256}, "uint8 overflow"),
    ({"timestamp": -1}, "negative uint64"),
    ({"timestamp": "1800000000"}, "string for uint64"),
    ({"proposal": "0x" + "AB" * 32}, "uppercase bytes32"),
    ({"proposal": "0xabcd"}, "short bytes32"),
    ({"reason": None}, "null string"),
])
def test_vote_schema_rejections(patch, why) -> None:
    w = Wallet.evm()
    msg = vote_message(w.address, PID, 1, NOW) | patch
    d = {"type": "Vote", "scheme": "eip712", "signer": w.address, "signature": "0x" + "11" * 65, "message": msg}
    fails(d, BadRequest, "invalid_message")


def test_missing_field_is_rejected() -> None:
    w = Wallet.evm()
    msg = vote_message(w.address, PID, 1, NOW)
    del msg["reason"]
    fails({"type": "Vote", "scheme": "eip712", "signer": w.address, "signature": "0x" + "11" * 65,
           "message": msg}, BadRequest, "invalid_message")


@pytest.mark.parametrize("amount", ["0123", "-1", "1e3", str(2**256), " 1", "0x10"])
def test_uint256_forms(amount) -> None:
    w = Wallet.evm()
    msg = proposal_message("TreasurySpend", w.address, NOW, amount=0) | {"amount": amount}
    fails({"type": "TreasurySpend", "scheme": "eip712", "signer": w.address, "signature": "0x" + "11" * 65,
           "message": msg}, BadRequest, "invalid_message")


def test_uint256_max_is_accepted_by_the_schema() -> None:
    w = Wallet.evm()
    msg = proposal_message("TreasurySpend", w.address, NOW) | {"amount": str(2**256 - 1)}
    assert verify_envelope(env(w.sign(DOMAIN, "TreasurySpend", msg)), ENC).message_json["amount"] == str(2**256 - 1)


def test_unknown_share_field() -> None:
    w = Wallet.evm()
    msg = proposal_message("AllocationChange", w.address, NOW)
    msg["shares"][0]["weight"] = 1
    fails({"type": "AllocationChange", "scheme": "eip712", "signer": w.address, "signature": "0x" + "11" * 65,
           "message": msg}, BadRequest, "invalid_message")


def test_unknown_type() -> None:
    w = Wallet.evm()
    fails({"type": "Mint", "scheme": "eip712", "signer": w.address, "signature": "0x" + "11" * 65,
           "message": {}}, BadRequest, "unknown_type")


def test_freshness() -> None:
    check_freshness(NOW - 300, NOW, 300)
    check_freshness(NOW + 300, NOW, 300)
    with pytest.raises(Unprocessable, match="older"):
        check_freshness(NOW - 301, NOW, 300)
    with pytest.raises(Unprocessable, match="ahead"):
        check_freshness(NOW + 301, NOW, 300)
