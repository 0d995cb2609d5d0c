"""Envelope verification with real keys: what is accepted, and each rejection's class and code.

EVM wallets sign with eth-account's own EIP-712 code, Solana wallets with PyNaCl over the
canonical JSON (tests/support.py), so nothing here signs with the code under test.
"""

from __future__ import annotations

import secrets

import base58
import msgspec
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.errors import BadRequest, Forbidden, GovernanceError, Unprocessable
from governance.signatures import (
    SECP256K1_N,
    Envelope,
    VerifiedMessage,
    address_kind,
    check_freshness,
    is_checksum_address,
    is_solana_address,
    normalize_address,
    verify_envelope,
)
from governance.typed_data import MESSAGE_TYPES, Domain, TypedDataEncoder
from tests.support import Wallet, cancel_message, proposal_message, vote_message

DOMAIN = Domain(name="AST DAO", chain_id=31337, salt="0x" + secrets.token_hex(32))
ENC = TypedDataEncoder(DOMAIN)
NOW = 1_800_000_000
PID = "0x" + "ab" * 32
KINDS = list(MESSAGE_TYPES)
WALLETS = {"evm": Wallet.evm(), "solana": Wallet.solana()}  # key generation is the slow part


def message(kind: str, who: str, **patch) -> dict:
    if kind == "Vote":
        return vote_message(who, PID, 1, NOW, reason="für ✓") | patch
    if kind == "Cancel":
        return cancel_message(who, PID, NOW) | patch
    return proposal_message(kind, who, NOW, title="Preis ändern ✓ 🚀") | patch


def signed(w: Wallet, kind: str = "Vote", domain: Domain = DOMAIN, **patch) -> dict:
    return w.sign(domain, kind, message(kind, w.address, **patch))


def env(d: dict) -> Envelope:
    return msgspec.convert(d, Envelope)


def fails(d: dict, cls: type[GovernanceError], code: str) -> GovernanceError:
    with pytest.raises(cls) as info:
        verify_envelope(env(d), ENC)
    assert info.value.code == code, info.value.detail
    return info.value


def unsigned(kind: str, w: Wallet, **patch) -> dict:
    """An envelope whose message is rejected before any signature is looked at."""
    sig = "0x" + "11" * 65 if w.scheme == "eip712" else base58.b58encode(b"\x11" * 64).decode()
    return {"type": kind, "scheme": w.scheme, "signer": w.address, "signature": sig,
            "message": message(kind, w.address, **patch)}


def flip(d: dict, index: int = 5) -> dict:
    """The envelope with one signature byte changed."""
    evm = d["scheme"] == "eip712"
    raw = bytearray(bytes.fromhex(d["signature"][2:]) if evm else base58.b58decode(d["signature"]))
    raw[index] ^= 0x01
    return d | {"signature": "0x" + raw.hex() if evm else base58.b58encode(bytes(raw)).decode()}


@pytest.mark.parametrize("who", ["evm", "solana"])
@pytest.mark.parametrize("kind", KINDS)
def test_valid_envelopes_verify(who, kind) -> None:
    w = WALLETS[who]
    d = signed(w, kind)
    v = verify_envelope(env(d), ENC)
    assert isinstance(v, VerifiedMessage) and isinstance(v.message, MESSAGE_TYPES[kind])
    assert (v.signer, v.primary_type, v.scheme, v.signature) == (w.address, kind, w.scheme, d["signature"])
    assert v.message_json == d["message"]
    assert v.digest == ENC.digest(kind, d["message"])  # the id is the EIP-712 digest for both schemes


@pytest.mark.parametrize("who", ["evm", "solana"])
@pytest.mark.parametrize("kind", KINDS)
def test_one_changed_byte_fails(who, kind) -> None:
    d = signed(WALLETS[who], kind)
    fails(flip(d, 5), Forbidden, "bad_signature")  # a byte of r (eip712) or R (ed25519)
    d["message"]["timestamp"] += 1
    fails(d, Forbidden, "bad_signature")


def test_changed_nested_field_fails() -> None:
    for w in WALLETS.values():
        d = signed(w, "AllocationChange")
        d["message"]["shares"][0]["bps"] += 1
        fails(d, Forbidden, "bad_signature")


@pytest.mark.parametrize("who", ["evm", "solana"])
@pytest.mark.parametrize("domain", [
    Domain(name="AST DAO", chain_id=31337, salt="0x" + "00" * 32),  # another deployment's salt
    Domain(name="AST DAO", chain_id=1, salt=DOMAIN.salt),  # another chain id
    Domain(name="Other DAO", chain_id=31337, salt=DOMAIN.salt),
    Domain(name="AST DAO", version="2", chain_id=31337, salt=DOMAIN.salt),
], ids=["salt", "chain_id", "name", "version"])
def test_other_domains_do_not_verify(who, domain) -> None:
    fails(signed(WALLETS[who], "Vote", domain), Forbidden, "bad_signature")


def test_high_s_twin_is_rejected() -> None:
    d = signed(WALLETS["evm"])
    raw = bytes.fromhex(d["signature"][2:])
    s, v = int.from_bytes(raw[32:64], "big"), raw[64]
    twin = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # n-s and 27 <-> 28
    fails(d | {"signature": "0x" + twin.hex()}, BadRequest, "high_s_signature")


def test_v_zero_or_one_is_accepted() -> None:
    d = signed(WALLETS["evm"])
    raw = bytes.fromhex(d["signature"][2:])
    low = "0x" + (raw[:64] + bytes([raw[64] - 27])).hex()
    assert verify_envelope(env(d | {"signature": low}), ENC).signature == low
    upper = "0x" + raw.hex().upper()
    assert verify_envelope(env(d | {"signature": upper}), ENC).signer == WALLETS["evm"].address


N_HEX = SECP256K1_N.to_bytes(32, "big").hex()


@pytest.mark.parametrize("mangle", [
    lambda s: s[:-2],  # truncated
    lambda s: s + "00",  # too long
    lambda s: s[:-2] + "1d",  # v = 29
    lambda s: s[:-2] + "02",  # v = 2
    lambda s: s[2:],  # no 0x
    lambda s: "0X" + s[2:],
    lambda s: "0x" + "zz" * 65,
    lambda s: s[:-4] + "  " + s[-2:],  # bytes.fromhex would skip the spaces
    lambda s: "0x" + "00" * 32 + s[66:],  # r = 0
    lambda s: s[:66] + "00" * 32 + s[-2:],  # s = 0
    lambda s: "0x" + N_HEX + s[66:],  # r = n
    lambda s: "",
], ids=["truncated", "long", "v29", "v2", "no0x", "0X", "nothex", "spaces", "r0", "s0", "r=n", "empty"])
def test_malformed_eip712_signatures(mangle) -> None:
    d = signed(WALLETS["evm"])
    fails(d | {"signature": mangle(d["signature"])}, BadRequest, "malformed_signature")


@pytest.mark.parametrize("mangle", [
    lambda s: base58.b58encode(base58.b58decode(s)[:63]).decode(),  # truncated
    lambda s: base58.b58encode(base58.b58decode(s) + b"\0").decode(),
    lambda s: s[:-1] + "0",  # not a base58 digit
    lambda s: "0x" + base58.b58decode(s).hex(),
    lambda s: "1" * 10_000,  # rejected without decoding
    lambda s: "",
], ids=["truncated", "long", "not-base58", "hex", "huge", "empty"])
def test_malformed_ed25519_signatures(mangle) -> None:
    d = signed(WALLETS["solana"])
    fails(d | {"signature": mangle(d["signature"])}, BadRequest, "malformed_signature")


def test_scheme_and_address_must_pair() -> None:
    fails(signed(WALLETS["evm"]) | {"scheme": "ed25519"}, BadRequest, "invalid_address")
    fails(signed(WALLETS["solana"]) | {"scheme": "eip712"}, BadRequest, "invalid_address")


def wrong_case(address: str) -> str:
    i = next(i for i, c in enumerate(address) if c.isalpha() and i > 1)
    return address[:i] + address[i].swapcase() + address[i + 1:]


@pytest.mark.parametrize("form", [str.lower, wrong_case, lambda a: a[2:]], ids=["lower", "bad-checksum", "no0x"])
def test_evm_signer_must_be_checksummed(form) -> None:
    acct = Account.create()
    while acct.address[2:].isdigit():  # an all-digit address has no case to get wrong
        acct = Account.create()
    w = Wallet("eip712", form(acct.address), acct)
    fails(w.sign(DOMAIN, "Vote", message("Vote", w.address)), BadRequest, "invalid_address")


@pytest.mark.parametrize("n", [31, 33])
def test_solana_signer_must_be_32_bytes(n) -> None:
    d = signed(WALLETS["solana"])
    other = base58.b58encode(secrets.token_bytes(n)).decode()
    d["signer"] = d["message"]["voter"] = other
    fails(d, BadRequest, "invalid_address")


def test_signer_must_be_named_in_the_message() -> None:
    a, b = WALLETS["evm"], Wallet.evm()
    fails(a.sign(DOMAIN, "Vote", message("Vote", b.address)), Forbidden, "signer_mismatch")
    # the same account in another spelling is still another string: the message must name it exactly
    d = a.sign(DOMAIN, "Cancel", message("Cancel", a.address.lower()))
    fails(d, Forbidden, "signer_mismatch")
    s = WALLETS["solana"]
    fails(s.sign(DOMAIN, "PriceChange", message("PriceChange", a.address)), Forbidden, "signer_mismatch")


@pytest.mark.parametrize(("kind", "patch"), [
    ("Vote", {"extra": 1}),
    ("Vote", {"choice": True}),  # bool for uint8
    ("Vote", {"timestamp": False}),  # bool for uint64
    ("Vote", {"proposal": "0xabcd"}),
    ("PriceChange", {"price": "0123"}),  # leading zero
    ("PriceChange", {"price": "-1"}),
    ("PriceChange", {"price": str(2**256)}),
    ("PriceChange", {"price": 120000}),  # a JSON number instead of a string
    ("TreasurySpend", {"amount": 1000}),
    ("AllocationChange", {"shares": [{"bucket": "compute", "bps": 10000, "weight": 1}]}),  # nested unknown
    ("AllocationChange", {"shares": [{"bucket": "compute"}]}),  # nested missing
    ("Cancel", {"timestamp": 2**64}),
])
def test_schema_rejections(kind, patch) -> None:
    for w in WALLETS.values():
        fails(unsigned(kind, w, **patch), BadRequest, "invalid_message")


@pytest.mark.parametrize("kind", KINDS)
def test_missing_field_is_rejected(kind) -> None:
    d = unsigned(kind, WALLETS["evm"])
    del d["message"]["timestamp"]
    assert "timestamp" in fails(d, BadRequest, "invalid_message").detail


def test_unknown_type() -> None:
    d = unsigned("Vote", WALLETS["evm"]) | {"type": "Mint"}
    fails(d, BadRequest, "unknown_type")


def test_uint_bounds_verify_when_signed() -> None:
    w = WALLETS["evm"]
    d = signed(w, "TreasurySpend", amount=str(2**256 - 1))
    assert verify_envelope(env(d), ENC).message_json["amount"] == str(2**256 - 1)
    shares = [{"bucket": "compute", "bps": 65535}]
    assert verify_envelope(env(signed(w, "AllocationChange", shares=shares)), ENC).message.shares[0].bps == 65535


def test_envelope_is_strict() -> None:
    d = signed(WALLETS["evm"])
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        env(d | {"domain": DOMAIN.as_json()})  # a client never chooses the domain
    with pytest.raises(msgspec.ValidationError):
        env(d | {"scheme": "secp256k1"})


def test_freshness() -> None:
    for ts in (NOW - 300, NOW, NOW + 300):
        check_freshness(ts, NOW, 300)
    with pytest.raises(Unprocessable) as old:
        check_freshness(NOW - 301, NOW, 300)
    assert old.value.code == "stale_timestamp" and str(NOW) in old.value.detail and "300" in old.value.detail
    with pytest.raises(Unprocessable) as ahead:
        check_freshness(NOW + 301, NOW, 300)
    assert ahead.value.code == "future_timestamp" and str(NOW + 300) in ahead.value.detail


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw) -> None:
    good = to_checksum_address(raw)
    assert is_checksum_address(good) and address_kind(good) == "evm"
    assert is_checksum_address(good.lower()) == (good.lower() == good)


def test_address_helpers() -> None:
    evm, sol = WALLETS["evm"].address, WALLETS["solana"].address
    assert address_kind(evm) == "evm" and address_kind(sol) == "solana"
    assert address_kind("0x" + "1" * 40) == "evm"  # no letters: checksummed as written
    assert is_solana_address("1" * 32)  # 32 zero bytes
    # (not sol + "1": that is 58 times the key, itself 32 bytes for about one key in 58)
    for bad in (evm.lower(), evm[2:], sol[:-2], "1" * 31, "1" * 33, "z" * 44, "", "0x", None, 5, "é" * 32,
                "0" * 44):
        assert address_kind(bad) is None, bad
    assert normalize_address(evm) == evm and normalize_address(sol) == sol
    with pytest.raises(BadRequest) as info:
        normalize_address(evm.lower())
    assert info.value.code == "invalid_address"


def test_solana_address_checks_are_cached_only_for_address_sized_strings() -> None:
    from governance.signatures import is_solana_address, solana_public_key

    solana_public_key.cache_clear()
    key = base58.b58encode(bytes(range(32))).decode()
    assert is_solana_address(key) and is_solana_address(key)
    assert solana_public_key.cache_info().hits == 1
    assert not is_solana_address("1" * 45) and not is_solana_address("x" * 100_000)
    assert solana_public_key.cache_info().currsize == 1  # a huge string is refused before the cache sees it
    short = base58.b58encode(bytes([7] * 31)).decode()  # 31 bytes in an address-sized string
    assert 32 <= len(short) <= 44 and not is_solana_address(short)


SOL43 = Wallet.solana(digits=43)  # with one more character, a string of an address's length


@pytest.mark.parametrize("suffix", [" ", "\n", "\t", "\r\n"])
def test_solana_address_with_trailing_whitespace_is_not_an_address(suffix) -> None:
    """base58.b58decode strips whitespace: "ADDR " decodes to ADDR's key. Taken, one key would
    have several identities, and the extra ones escape exact-match lists."""
    assert is_solana_address(SOL43.address)
    assert base58.b58decode(SOL43.address + suffix) == base58.b58decode(SOL43.address)  # what it defends against
    assert not is_solana_address(SOL43.address + suffix)
    assert address_kind(SOL43.address + suffix) is None
    with pytest.raises(BadRequest) as info:
        normalize_address(SOL43.address + suffix)
    assert info.value.code == "invalid_address"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [" ", "\n"])
def test_solana_envelope_with_trailing_whitespace_in_signer_is_refused(kind, suffix) -> None:
    # the wallet really signed a message naming "ADDR ": only the address's form can refuse it
    w = Wallet("ed25519", SOL43.address + suffix, SOL43._key)
    fails(w.sign(DOMAIN, kind, message(kind, w.address)), BadRequest, "invalid_address")


@pytest.mark.parametrize("suffix", [" ", "\n"])
def test_ed25519_signature_with_trailing_whitespace_is_malformed(suffix) -> None:
    d = signed(WALLETS["solana"])
    verify_envelope(env(d), ENC)
    fails(d | {"signature": d["signature"] + suffix}, BadRequest, "malformed_signature")
