"""Settings: defaults, TOML file, DAO_* variables, validation, and the README documents all."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from eth_account import Account

from governance.settings import Settings, SettingsError, load_settings
from tests.support import Wallet

README = Path(__file__).resolve().parents[2] / "README.md"
EVM = Account.create().address  # EIP-55 checksummed
EVM2 = Account.create().address
SOL = Wallet.solana().address
SOL43 = Wallet.solana(digits=43).address  # with one more character, still of an address's length


def refused(match: str, **values) -> SettingsError:
    with pytest.raises(SettingsError, match=match) as info:
        load_settings(env={}, **values)
    return info.value


def test_defaults_follow_the_economic_model() -> None:
    s = load_settings(env={})
    assert s.initial_price == 100_000
    assert s.initial_allocation == {"compute": 5000, "development": 2000, "treasury": 1500,
                                    "buybacks": 1000, "community": 500}


def test_env_overrides_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "dao.toml"
    cfg.write_text(f'dao_name = "From TOML"\nchain_id = 5\nguardians = ["{EVM}"]\n')
    s = load_settings(env={"DAO_CONFIG": str(cfg), "DAO_CHAIN_ID": "10"})
    assert s.dao_name == "From TOML"
    assert s.chain_id == 10
    assert s.guardians == (EVM,)


def test_allocation_from_env_must_sum_to_10000() -> None:
    env = {"DAO_INITIAL_ALLOCATION": "compute=5000,development=2000,treasury=1500,buybacks=1000,community=400"}
    with pytest.raises(SettingsError, match="10000"):
        load_settings(env=env)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "dao.toml"
    cfg.write_text("quorum = 3\n")
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(env={"DAO_CONFIG": str(cfg)})


def test_unreadable_config_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="DAO_CONFIG: cannot read"):
        load_settings(env={"DAO_CONFIG": str(tmp_path / "missing.toml")})
    cfg = tmp_path / "dao.toml"
    cfg.write_text("chain_id = = 5\n")
    with pytest.raises(SettingsError, match=r"DAO_CONFIG: .* is not TOML"):
        load_settings(env={"DAO_CONFIG": str(cfg)})
    cfg.write_text("initial_allocation = [1, 2]\n")
    with pytest.raises(SettingsError, match="DAO_INITIAL_ALLOCATION"):
        load_settings(env={"DAO_CONFIG": str(cfg)})


def test_bad_integer_is_refused() -> None:
    with pytest.raises(SettingsError):
        load_settings(env={"DAO_VOTING_PERIOD": "three days"})


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    missing = [f.name for f in fields(Settings) if f"DAO_{f.name.upper()}" not in text]
    assert not missing, f"README lacks: {missing}"


# --- addresses: one canonical form, each once ------------------------------------------------

@pytest.mark.parametrize("setting", ["guardians", "excluded_accounts"])
def test_address_lists_keep_canonical_addresses_as_given(setting) -> None:
    s = load_settings(env={f"DAO_{setting.upper()}": f"{EVM}, {SOL}"})
    assert getattr(s, setting) == (EVM, SOL)


def test_lowercase_guardian_is_refused_naming_the_setting() -> None:
    # it would silently lose its rights: the API only ever sees the checksummed form
    e = refused("DAO_GUARDIANS", guardians=(EVM.lower(),))
    assert "EIP-55" in str(e) and EVM.lower() in str(e)


def test_lowercase_excluded_account_is_refused_naming_the_setting() -> None:
    # it would silently not be excluded: ballots and balances hold the checksummed form
    refused("DAO_EXCLUDED_ACCOUNTS.*EIP-55", excluded_accounts=(EVM.lower(),))


@pytest.mark.parametrize("setting", ["guardians", "excluded_accounts"])
@pytest.mark.parametrize("address", ["EVM", "SOL"])
def test_address_listed_twice_is_refused(setting, address) -> None:
    # an excluded account listed twice was subtracted twice from the quorum base
    a = {"EVM": EVM, "SOL": SOL}[address]
    refused(f"DAO_{setting.upper()} lists .* twice", **{setting: (a, EVM2, a)})
    refused(f"DAO_{setting.upper()} lists .* twice", **{setting: (SOL43, SOL43)})


def test_duplicate_from_the_environment_is_refused() -> None:
    with pytest.raises(SettingsError, match="DAO_EXCLUDED_ACCOUNTS lists"):
        load_settings(env={"DAO_EXCLUDED_ACCOUNTS": f"{EVM},{EVM}"})


@pytest.mark.parametrize("suffix", [" ", "\n", "\t"])
def test_solana_address_with_surrounding_whitespace_is_refused(tmp_path: Path, suffix) -> None:
    # a TOML list keeps the whitespace the environment's comma list trims
    cfg = tmp_path / "dao.toml"
    cfg.write_text(f"guardians = [{json.dumps(SOL43 + suffix)}]\n")
    with pytest.raises(SettingsError, match="DAO_GUARDIANS"):
        load_settings(env={"DAO_CONFIG": str(cfg)})


@pytest.mark.parametrize("value", ["0xabc", "not an address", "0x" + "g" * 40, "", "1" * 45])
def test_malformed_address_is_refused(value) -> None:
    refused("DAO_EXCLUDED_ACCOUNTS", excluded_accounts=(value,))


def test_erc20_token_is_an_eip55_address() -> None:
    assert load_settings(env={}, erc20_token=EVM).erc20_token == EVM
    refused("DAO_ERC20_TOKEN.*EIP-55", erc20_token=EVM.lower())
    refused("DAO_ERC20_TOKEN", erc20_token=SOL)  # an ERC-20 lives on an EVM chain


# --- everything else -----------------------------------------------------------------------

@pytest.mark.parametrize(("values", "names"), [
    ({"chain_id": 0}, "DAO_CHAIN_ID"),
    ({"token_decimals": 78}, "DAO_TOKEN_DECIMALS"),
    ({"token_decimals": -1}, "DAO_TOKEN_DECIMALS"),
    ({"proposal_threshold": -1}, "DAO_PROPOSAL_THRESHOLD"),
    ({"spend_cap_bps": 10_001}, "DAO_SPEND_CAP_BPS"),
    ({"price_quorum_bps": 10_001}, "DAO_PRICE_QUORUM_BPS"),
    ({"spend_approval_bps": 10_000}, "DAO_SPEND_APPROVAL_BPS"),
    ({"timelock": -1}, "DAO_TIMELOCK"),
    ({"voting_period": 0}, "DAO_VOTING_PERIOD"),
    ({"title_max_chars": 0}, "DAO_TITLE_MAX_CHARS"),
    ({"max_clock_skew": -1}, "DAO_MAX_CLOCK_SKEW"),
    ({"confirmations": -1}, "DAO_CONFIRMATIONS"),
    ({"execution_lease_seconds": 0}, "DAO_EXECUTION_LEASE_SECONDS"),
    ({"retry_interval": -1}, "DAO_RETRY_INTERVAL"),
    ({"port": 0}, "DAO_PORT"),
    ({"port": 70_000}, "DAO_PORT"),
    ({"max_body_bytes": 0}, "DAO_MAX_BODY_BYTES"),
    ({"rate_limit_per_minute": -1}, "DAO_RATE_LIMIT_PER_MINUTE"),
    ({"rate_limit_burst": 0}, "DAO_RATE_LIMIT_BURST"),
    ({"scheduler_interval": 0}, "DAO_SCHEDULER_INTERVAL"),
    ({"vote_batch_max": 0}, "DAO_VOTE_BATCH_MAX"),
    ({"dao_name": " "}, "DAO_DAO_NAME"),
    ({"token_symbol": ""}, "DAO_TOKEN_SYMBOL"),
    ({"host": ""}, "DAO_HOST"),
    ({"database_timeout": 0}, "DAO_DATABASE_TIMEOUT"),
    ({"database_url": "mysql://db/dao"}, "DAO_DATABASE_URL"),
    ({"database_url": "data/dao.db"}, "DAO_DATABASE_URL"),
    ({"rpc_url": "localhost:8545"}, "DAO_RPC_URL"),
    ({"rpc_url": "ws://127.0.0.1:8545"}, "DAO_RPC_URL"),
    ({"power_source": "erc20", "erc20_token": EVM}, "DAO_RPC_URL"),
    ({"cors_origins": ("https://app.example/path",)}, "DAO_CORS_ORIGINS"),
    ({"cors_origins": ("https://a.example", "https://a.example")}, "DAO_CORS_ORIGINS"),
    ({"buckets": ("compute", "treasury", "treasury"),
      "initial_allocation": {"compute": 5000, "treasury": 5000}}, "DAO_BUCKETS"),
    ({"external_buckets": ("marketing",)}, "DAO_EXTERNAL_BUCKETS"),
    ({"external_buckets": ("development", "development")}, "DAO_EXTERNAL_BUCKETS"),
    ({"treasury_key_file": "/k.json", "treasury_private_key": "0x" + "11" * 32}, "DAO_TREASURY_KEY_FILE"),
])
def test_out_of_range_setting_is_refused_naming_it(values, names) -> None:
    refused(names, **values)


def test_the_message_never_shows_the_treasury_key() -> None:
    key = "0x" + "11" * 32
    e = refused("DAO_TREASURY_PRIVATE_KEY", treasury_key_file="/k.json", treasury_private_key=key)
    assert key not in str(e) and key[2:] not in str(e)


@pytest.mark.parametrize("value", ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"])
def test_trusted_proxies_are_addresses_or_networks(value) -> None:
    assert load_settings(env={"DAO_TRUSTED_PROXIES": value}).trusted_proxies == (value,)


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.1/8", "300.1.1.1", "10.0.0.0/33"])
def test_malformed_trusted_proxy_is_refused(value) -> None:
    refused("DAO_TRUSTED_PROXIES", trusted_proxies=(value,))


def test_trusted_proxy_named_twice_is_refused() -> None:
    refused("DAO_TRUSTED_PROXIES lists 127.0.0.1/32 twice", trusted_proxies=("127.0.0.1", "127.0.0.1/32"))
