"""What a process checks when the composition root builds it (governance.bootstrap): the chain
assets, the RPC endpoint and treasury key they need. Each problem is a SettingsError naming
the setting, raised before anything is served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from governance.bootstrap import bootstrap
from governance.settings import SettingsError, load_settings
from treasury_exec.chain import parse_assets
from treasury_exec.wiring import check_settings

TOKEN = Account.create().address
OTHER = Account.create().address
RPC = "http://127.0.0.1:8545"


SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # an executor's account (EIP-55)


def assets(**cfg) -> str:
    return json.dumps(cfg)


def test_good_assets_are_parsed() -> None:
    parsed = parse_assets(assets(USDC={"token": TOKEN, "decimals": 6, "mode": "chain"},
                                 ETH={"native": True, "mode": "external", "senders": [SENDER]}))
    assert parsed["USDC"].token == TOKEN and parsed["USDC"].decimals == 6 and parsed["USDC"].mode == "chain"
    assert parsed["ETH"].native and parsed["ETH"].decimals == 18 and parsed["ETH"].mode == "external"


@pytest.mark.parametrize(("raw", "match"), [
    ("{not json", "not JSON"),
    ('["USDC"]', "JSON object"),
    (f'{{"USDC": {{"token": "{TOKEN}"}}, "USDC": {{"token": "{OTHER}"}}}}', "'USDC' twice"),
    (assets(USDC=f"{TOKEN}"), "give an object"),
    (assets(USDC={"token": TOKEN, "mdoe": "external"}), r"unknown key\(s\) \['mdoe'\]"),
    (assets(USDC={"token": TOKEN.lower()}), "EIP-55"),
    (assets(USDC={"token": "0x1234"}), "EIP-55"),
    (assets(USDC={"decimals": 6}), "either an EIP-55 'token' address or 'native'"),
    (assets(ETH={"native": True, "token": TOKEN}), "either"),
    (assets(ETH={"native": "yes"}), "native is true or false"),
    (assets(A={"token": TOKEN}, B={"token": TOKEN}), f"{TOKEN} is already asset 'A'"),
    (assets(ETH={"native": True}, WETH={"native": True}), "the native coin is already asset 'ETH'"),
    (assets(USDC={"token": TOKEN, "decimals": "6"}), "decimals"),
    (assets(USDC={"token": TOKEN, "decimals": 6.5}), "decimals"),
    (assets(USDC={"token": TOKEN, "decimals": True}), "decimals"),
    (assets(USDC={"token": TOKEN, "decimals": 78}), "decimals"),
    (assets(USDC={"token": TOKEN, "mode": "auto"}), "mode is chain or external"),
    (assets(**{"US DC": {"token": TOKEN}}), "symbol"),
    (assets(**{"X" * 33: {"token": TOKEN}}), "symbol"),
])
def test_malformed_chain_assets_are_refused_naming_the_setting(raw, match) -> None:
    with pytest.raises(SettingsError, match="DAO_CHAIN_ASSETS") as info:
        parse_assets(raw)
    assert info.match(match)


@pytest.mark.parametrize("symbol", ["USD", "AST"])
def test_an_asset_cannot_take_the_journals_own_names(symbol) -> None:
    s = load_settings(env={}, rpc_url=RPC,
                      chain_assets=assets(**{symbol: {"token": TOKEN, "mode": "external", "senders": [SENDER]}}))
    with pytest.raises(SettingsError, match=f"DAO_CHAIN_ASSETS: '{symbol}'"):
        check_settings(s)


def test_chain_assets_need_an_rpc_url() -> None:
    s = load_settings(env={}, chain_assets=assets(USDC={"token": TOKEN, "mode": "external", "senders": [SENDER]}))
    with pytest.raises(SettingsError, match="DAO_RPC_URL"):
        check_settings(s)


def test_a_chain_mode_asset_needs_the_treasury_key() -> None:
    s = load_settings(env={}, rpc_url=RPC, chain_assets=assets(USDC={"token": TOKEN}))
    with pytest.raises(SettingsError, match=r"DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY.*USDC"):
        check_settings(s)
    # an external executor sends it: no key needed
    ext = load_settings(env={}, rpc_url=RPC,
                        chain_assets=assets(USDC={"token": TOKEN, "mode": "external", "senders": [SENDER]}))
    assert set(check_settings(ext)[0]) == {"USDC"}


def test_a_native_coin_the_service_sends_needs_a_fee_bucket() -> None:
    key = "0x" + "11" * 32
    native = assets(ETH={"native": True, "mode": "chain"})
    with pytest.raises(SettingsError, match=r"DAO_FEE_BUCKET is empty.*'ETH'"):
        check_settings(load_settings(env={}, rpc_url=RPC, treasury_private_key=key, chain_assets=native))
    with pytest.raises(SettingsError, match="DAO_FEE_BUCKET names 'marketing'"):
        load_settings(env={}, fee_bucket="marketing")
    ok = load_settings(env={}, rpc_url=RPC, treasury_private_key=key, chain_assets=native, fee_bucket="treasury")
    assert set(check_settings(ok)[0]) == {"ETH"}
    # no journaled native coin the service sends: a fee bucket would do nothing, and is refused
    external = assets(ETH={"native": True, "mode": "external", "senders": [SENDER]}, USDC={"token": TOKEN})
    with pytest.raises(SettingsError, match="DAO_FEE_BUCKET is set"):
        check_settings(load_settings(env={}, rpc_url=RPC, treasury_private_key=key, chain_assets=external,
                                     fee_bucket="treasury"))


@pytest.fixture(scope="module")
def keystore(tmp_path_factory) -> tuple[Path, str]:
    acct = Account.create()
    path = tmp_path_factory.mktemp("keys") / "treasury.json"
    # pbkdf2 with few iterations: the test is about the check, not the key's strength
    path.write_text(json.dumps(Account.encrypt(acct.key, "right horse", kdf="pbkdf2", iterations=1000)))
    return path, acct.address


def chain_settings(**values):
    return load_settings(env={}, rpc_url=RPC, chain_assets=assets(USDC={"token": TOKEN}), **values)


def test_a_keystore_that_decrypts_is_accepted(keystore) -> None:
    path, _ = keystore
    assets_, account = check_settings(chain_settings(treasury_key_file=str(path), treasury_key_password="right horse"))
    assert set(assets_) == {"USDC"} and account is not None and account.address == keystore[1]


def test_a_wrong_keystore_password_is_refused(keystore) -> None:
    path, _ = keystore
    with pytest.raises(SettingsError, match="DAO_TREASURY_KEY_PASSWORD does not decrypt") as info:
        check_settings(chain_settings(treasury_key_file=str(path), treasury_key_password="wrong horse"))
    assert "wrong horse" not in str(info.value)


def test_an_unreadable_keystore_is_refused(tmp_path) -> None:
    with pytest.raises(SettingsError, match="DAO_TREASURY_KEY_FILE: cannot read"):
        check_settings(chain_settings(treasury_key_file=str(tmp_path / "missing.json")))
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(SettingsError, match=r"DAO_TREASURY_KEY_FILE: .* is not a JSON keystore"):
        check_settings(chain_settings(treasury_key_file=str(tmp_path / "junk.json")))
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(SettingsError, match=r"DAO_TREASURY_KEY_FILE: .* not a keystore"):
        check_settings(chain_settings(treasury_key_file=str(tmp_path / "empty.json")))


@pytest.mark.parametrize("key", ["0x1234", "not hex at all " * 4, "0x" + "00" * 32])
def test_a_malformed_private_key_is_refused_without_showing_it(key) -> None:
    with pytest.raises(SettingsError, match="DAO_TREASURY_PRIVATE_KEY is not") as info:
        check_settings(chain_settings(treasury_private_key=key))
    assert key not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None  # no traceback quoting it


def test_a_configured_key_is_checked_even_when_no_asset_needs_it() -> None:
    with pytest.raises(SettingsError, match="DAO_TREASURY_PRIVATE_KEY"):
        check_settings(load_settings(env={}, treasury_private_key="0x1234"))


def test_bootstrap_refuses_bad_chain_assets_before_touching_the_database(tmp_path) -> None:
    db = tmp_path / "x.db"
    with pytest.raises(SettingsError, match="DAO_CHAIN_ASSETS"):
        bootstrap(load_settings(env={}, database_url=f"sqlite:///{db}",
                                chain_assets=assets(USDC={"token": TOKEN.lower()})))
    assert not db.exists()  # the settings are checked before an engine is made
