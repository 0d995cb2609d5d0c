"""Settings: defaults, TOML file, DAO_* variables, validation, and the README documents all."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from governance.settings import Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_follow_the_economic_model() -> None:
    s = load_settings(env={})
    assert s.initial_price == 100_000
    assert s.initial_allocation == {"compute": 5000, "development": 2000, "treasury": 1500,
                                    "buybacks": 1000, "community": 500}


def test_env_overrides_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "dao.toml"
    cfg.write_text('dao_name = "From TOML"\nchain_id = 5\nguardians = ["0xabc"]\n')
    s = load_settings(env={"DAO_CONFIG": str(cfg), "DAO_CHAIN_ID": "10"})
    assert s.dao_name == "From TOML"
    assert s.chain_id == 10
    assert s.guardians == ("0xabc",)


def test_allocation_from_env_must_sum_to_10000() -> None:
    env = {"DAO_INITIAL_ALLOCATION": "compute=5000,development=2000,treasury=1500,buybacks=1000,community=400"}
    with pytest.raises(SettingsError, match="10000"):
        load_settings(env=env)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "dao.toml"
    cfg.write_text("quorum = 3\n")
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(env={"DAO_CONFIG": str(cfg)})


def test_bad_integer_is_refused() -> None:
    with pytest.raises(SettingsError):
        load_settings(env={"DAO_VOTING_PERIOD": "three days"})


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    missing = [f.name for f in fields(Settings) if f"DAO_{f.name.upper()}" not in text]
    assert not missing, f"README lacks: {missing}"
