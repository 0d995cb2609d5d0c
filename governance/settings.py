"""Deployment settings: defaults, then an optional TOML file, then ``DAO_*`` variables.

Every field is documented in the README's settings table (kept in step by
``tests/unit/test_settings.py``). Money is in micro-USD, tokens in base units, shares and
thresholds in basis points, durations in seconds: integers throughout.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

DEFAULT_BUCKETS = ("compute", "development", "treasury", "buybacks", "community")
DEFAULT_ALLOCATION = {
    "compute": 5000,
    "development": 2000,
    "treasury": 1500,
    "buybacks": 1000,
    "community": 500,
}
PROPOSAL_KINDS = ("PriceChange", "AllocationChange", "TreasurySpend")


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True)
class Rules:
    """Quorum and approval for one proposal kind, in basis points."""

    quorum_bps: int
    approval_bps: int


@dataclass(frozen=True)
class Settings:
    # storage
    database_url: str = "sqlite:///data/dao.db"
    database_timeout: int = 30  # seconds to wait for SQLite's write lock or a PostgreSQL connection
    # identity of the deployment (the EIP-712 domain; the salt lives in the database)
    dao_name: str = "AST DAO"
    chain_id: int = 1
    # the token
    token_symbol: str = "AST"
    token_decimals: int = 18
    # the economy
    buckets: tuple[str, ...] = DEFAULT_BUCKETS
    initial_price: int = 100_000  # micro-USD per whole token ($0.10)
    initial_allocation: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ALLOCATION))
    # lifecycle (seconds)
    voting_delay: int = 3_600
    voting_period: int = 3 * 86_400
    timelock: int = 86_400
    grace_period: int = 14 * 86_400
    # rules per kind (basis points)
    price_quorum_bps: int = 1_000
    price_approval_bps: int = 5_000
    allocation_quorum_bps: int = 1_000
    allocation_approval_bps: int = 5_000
    spend_quorum_bps: int = 1_500
    spend_approval_bps: int = 6_000
    # proposal validation
    proposal_threshold: int = 10**18  # base units the proposer must hold at the snapshot
    max_price_change_bps: int = 5_000  # a new price within ±50% of the price in force
    spend_cap_bps: int = 1_000  # a spend at most 10% of the bucket's balance at creation
    title_max_chars: int = 200
    description_max_chars: int = 20_000
    reason_max_chars: int = 1_000
    # signatures and votes
    max_clock_skew: int = 300
    vote_change: str = "latest"  # or "forbid"
    vote_batch_max: int = 256  # votes committed together at most (see voting.writer)
    view_cache_ms: int = 1000  # how long a rendered proposal may be served from memory (governance.viewcache)
    guardians: tuple[str, ...] = ()
    # voting power
    power_source: str = "ledger"  # "ledger" | "erc20" | "holders-file"
    rpc_url: str = ""
    erc20_token: str = ""
    confirmations: int = 2
    excluded_accounts: tuple[str, ...] = ()
    # treasury execution
    chain_assets: str = ""  # JSON: {"USDC": {"token": "0x…", "decimals": 6, "mode": "chain"}, …}
    treasury_key_file: str = ""  # an encrypted keystore; its password in DAO_TREASURY_KEY_PASSWORD
    treasury_key_password: str = field(default="", repr=False)
    treasury_private_key: str = field(default="", repr=False)  # alternative to the keystore
    execution_lease_seconds: int = 300  # an external executor's claim lasts this long
    external_buckets: tuple[str, ...] = ()  # spends from these buckets wait for an external executor
    retry_interval: int = 60  # after a failed execution attempt, wait this long before the next
    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    rate_limit_per_minute: int = 600  # per client address; 0 turns limiting off
    rate_limit_burst: int = 60
    # scheduler
    scheduler_interval: int = 10
    run_scheduler_in_server: bool = True
    # tests only: a file holding the current Unix time (see governance.clock.FileClock)
    test_clock_file: str = ""

    def rules_for(self, kind: str) -> Rules:
        """The quorum and approval a new proposal of ``kind`` freezes."""
        prefix = {"PriceChange": "price", "AllocationChange": "allocation", "TreasurySpend": "spend"}
        if kind not in prefix:
            raise SettingsError(f"unknown proposal kind {kind!r}")
        p = prefix[kind]
        return Rules(getattr(self, f"{p}_quorum_bps"), getattr(self, f"{p}_approval_bps"))

    def validate(self) -> Settings:
        """Refuse settings that would make the economy or the lifecycle inconsistent."""
        if set(self.initial_allocation) != set(self.buckets):
            raise SettingsError("initial_allocation must name exactly the configured buckets")
        if sum(self.initial_allocation.values()) != 10_000:
            raise SettingsError("initial_allocation must sum to 10000 basis points")
        if "treasury" not in self.buckets:
            raise SettingsError("the 'treasury' bucket receives rounding remainders; keep it")
        if any(v < 0 for v in self.initial_allocation.values()):
            raise SettingsError("allocation shares cannot be negative")
        if self.initial_price <= 0:
            raise SettingsError("initial_price must be positive")
        for name in ("voting_delay", "voting_period", "timelock", "grace_period"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} cannot be negative")
        if self.database_timeout <= 0:
            raise SettingsError("database_timeout must be positive")
        if self.voting_period <= 0:
            raise SettingsError("voting_period must be positive")
        for kind in PROPOSAL_KINDS:
            r = self.rules_for(kind)
            if not (0 <= r.quorum_bps <= 10_000 and 0 <= r.approval_bps < 10_000):
                raise SettingsError(f"rules for {kind} out of range")
        if self.vote_batch_max < 1:
            raise SettingsError("vote_batch_max must be at least 1")
        if self.view_cache_ms < 0:
            raise SettingsError("view_cache_ms cannot be negative (0 turns the cache off)")
        if self.vote_change not in ("latest", "forbid"):
            raise SettingsError("vote_change must be 'latest' or 'forbid'")
        if self.power_source not in ("ledger", "erc20", "holders-file"):
            raise SettingsError("power_source must be ledger, erc20 or holders-file")
        if self.power_source == "erc20" and not (self.rpc_url and self.erc20_token):
            raise SettingsError("power_source erc20 needs rpc_url and erc20_token")
        return self

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes).validate()


def _coerce(name: str, typ: Any, raw: Any) -> Any:
    """Turn a TOML value or an environment string into the field's type."""
    origin = get_origin(typ)
    try:
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typ is int:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if typ is str:
            return str(raw)
        if origin is tuple:
            if isinstance(raw, str):
                raw = [p.strip() for p in raw.split(",") if p.strip()]
            (inner, _) = get_args(typ)
            return tuple(str(x) for x in raw) if inner is str else tuple(raw)
        if origin is dict:
            if isinstance(raw, str):
                raw = json.loads(raw) if raw.strip().startswith("{") else dict(
                    (k.strip(), v.strip()) for k, v in (p.split("=", 1) for p in raw.split(",") if p)
                )
            return {str(k): int(v) for k, v in raw.items()}
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"setting {name}: cannot read {raw!r} as {typ}") from exc
    raise SettingsError(f"setting {name}: unsupported type {typ}")


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file named by ``DAO_CONFIG`` (if any), then ``DAO_<FIELD>``."""
    env = dict(os.environ if env is None else env)
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    config_path = env.get("DAO_CONFIG")
    if config_path:
        with Path(config_path).open("rb") as fh:
            data = tomllib.load(fh)
        for key, raw in data.items():
            if key not in hints:
                raise SettingsError(f"unknown setting {key!r} in {config_path}")
            values[key] = _coerce(key, hints[key], raw)
    for f in fields(Settings):
        var = f"DAO_{f.name.upper()}"
        if var in env:
            values[f.name] = _coerce(f.name, hints[f.name], env[var])
    values.update(overrides)
    return Settings(**values).validate()
