"""Deployment settings: defaults, then an optional TOML file, then ``DAO_*`` variables.

Every field is documented in the README's settings table (kept in step by
``tests/unit/test_settings.py``). Money is in micro-USD, tokens in base units, shares and
thresholds in basis points, durations in seconds: integers throughout.

:meth:`Settings.validate` refuses, with a message naming the variable, every value the service
cannot run with; what depends on the domains (``DAO_CHAIN_ASSETS``, the treasury key) is checked
when the composition root builds them (:func:`governance.bootstrap.bootstrap`, through
``treasury_exec.wiring.build``), and the chain they point at when a process that runs the
service starts (:func:`governance.bootstrap.check_chain`). Addresses are taken
only in their one canonical form, never rewritten: an EVM address EIP-55 checksummed, as the API
takes it (a lower-case one carries no checksum, so a typo in it would go unnoticed), a Solana
address exactly as base58 encodes its key; an address listed twice is refused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from governance.signatures import is_checksum_address, is_solana_address
from governance.types import BPS

DEFAULT_BUCKETS = ("compute", "development", "treasury", "buybacks", "community")
DEFAULT_ALLOCATION = {
    "compute": 5000,
    "development": 2000,
    "treasury": 1500,
    "buybacks": 1000,
    "community": 500,
}
PROPOSAL_KINDS = ("PriceChange", "AllocationChange", "TreasurySpend")
_RULE_PREFIX = {"PriceChange": "price", "AllocationChange": "allocation", "TreasurySpend": "spend"}


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
    fee_bucket: str = ""  # pays the treasury account's network fees when the native coin is a journaled asset
    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    rate_limit_per_minute: int = 600  # per client address; 0 turns limiting off
    rate_limit_burst: int = 60
    trusted_proxies: tuple[str, ...] = ()  # IPs / networks whose X-Forwarded-For names the client
    # scheduler
    scheduler_interval: int = 10
    run_scheduler_in_server: bool = True
    # tests only: a file holding the current Unix time (see governance.clock.FileClock)
    test_clock_file: str = ""

    def rules_for(self, kind: str) -> Rules:
        """The quorum and approval a new proposal of ``kind`` freezes."""
        if kind not in _RULE_PREFIX:
            raise SettingsError(f"unknown proposal kind {kind!r}")
        p = _RULE_PREFIX[kind]
        return Rules(getattr(self, f"{p}_quorum_bps"), getattr(self, f"{p}_approval_bps"))

    def validate(self) -> Settings:
        """Refuse settings the service cannot run with (:class:`SettingsError`, naming the
        ``DAO_*`` variable): inconsistent economy or lifecycle, out-of-range numbers, addresses
        not in their canonical form or listed twice, malformed URLs and networks."""
        self._check_economy()
        self._check_lifecycle()
        self._check_voting()
        self._check_treasury()
        self._check_service()
        return self

    def _check_economy(self) -> None:
        _no_duplicates("buckets", self.buckets)
        if any(not b or b != b.strip() for b in self.buckets):
            raise SettingsError("DAO_BUCKETS: a bucket name is empty or has surrounding spaces")
        if set(self.initial_allocation) != set(self.buckets):
            raise SettingsError("DAO_INITIAL_ALLOCATION must name exactly the configured buckets (DAO_BUCKETS)")
        if sum(self.initial_allocation.values()) != BPS:
            raise SettingsError("DAO_INITIAL_ALLOCATION must sum to 10000 basis points")
        if "treasury" not in self.buckets:
            raise SettingsError("DAO_BUCKETS: the 'treasury' bucket receives rounding remainders; keep it")
        if any(v < 0 for v in self.initial_allocation.values()):
            raise SettingsError("DAO_INITIAL_ALLOCATION: shares cannot be negative")
        if self.initial_price <= 0:
            raise SettingsError("DAO_INITIAL_PRICE must be positive")
        if not self.dao_name.strip():
            raise SettingsError("DAO_DAO_NAME cannot be empty (it is the EIP-712 domain's name)")
        _in_range("chain_id", self.chain_id, 1, 2**256 - 1)
        if not self.token_symbol.strip() or self.token_symbol != self.token_symbol.strip():
            raise SettingsError("DAO_TOKEN_SYMBOL cannot be empty or have surrounding spaces")
        _in_range("token_decimals", self.token_decimals, 0, 77)  # 10^77 < 2^256
        _in_range("proposal_threshold", self.proposal_threshold, 0, 2**256 - 1)
        _in_range("max_price_change_bps", self.max_price_change_bps, 0, None)
        _in_range("spend_cap_bps", self.spend_cap_bps, 0, BPS)

    def _check_lifecycle(self) -> None:
        for name in ("voting_delay", "voting_period", "timelock", "grace_period"):
            _in_range(name, getattr(self, name), 0, None)
        _in_range("voting_period", self.voting_period, 1, None)
        for prefix in _RULE_PREFIX.values():
            _in_range(f"{prefix}_quorum_bps", getattr(self, f"{prefix}_quorum_bps"), 0, BPS)
            # approval is a strict majority of that share: 10000 could never be exceeded
            _in_range(f"{prefix}_approval_bps", getattr(self, f"{prefix}_approval_bps"), 0, 9_999)
        _in_range("title_max_chars", self.title_max_chars, 1, None)
        _in_range("description_max_chars", self.description_max_chars, 0, None)
        _in_range("reason_max_chars", self.reason_max_chars, 0, None)
        _in_range("max_clock_skew", self.max_clock_skew, 0, None)

    def _check_voting(self) -> None:
        if self.vote_change not in ("latest", "forbid"):
            raise SettingsError("DAO_VOTE_CHANGE must be 'latest' or 'forbid'")
        _in_range("vote_batch_max", self.vote_batch_max, 1, None)
        if self.view_cache_ms < 0:
            raise SettingsError("DAO_VIEW_CACHE_MS cannot be negative (0 turns the cache off)")
        _addresses("guardians", self.guardians)
        _addresses("excluded_accounts", self.excluded_accounts)
        if self.power_source not in ("ledger", "erc20", "holders-file"):
            raise SettingsError("DAO_POWER_SOURCE must be ledger, erc20 or holders-file")
        if self.power_source == "erc20" and not (self.rpc_url and self.erc20_token):
            raise SettingsError("DAO_POWER_SOURCE erc20 needs DAO_RPC_URL and DAO_ERC20_TOKEN")
        if self.erc20_token:
            _addresses("erc20_token", (self.erc20_token,), evm_only=True)
        if self.rpc_url:
            parts = urlsplit(self.rpc_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError(f"DAO_RPC_URL must be an http:// or https:// URL, not {self.rpc_url!r}")
        _in_range("confirmations", self.confirmations, 0, None)

    def _check_treasury(self) -> None:
        if self.treasury_key_file and self.treasury_private_key:
            raise SettingsError("DAO_TREASURY_KEY_FILE and DAO_TREASURY_PRIVATE_KEY are both set: give one")
        _in_range("execution_lease_seconds", self.execution_lease_seconds, 1, None)
        _no_duplicates("external_buckets", self.external_buckets)
        unknown = [b for b in self.external_buckets if b not in self.buckets]
        if unknown:
            raise SettingsError(f"DAO_EXTERNAL_BUCKETS names {unknown}, which DAO_BUCKETS does not")
        _in_range("retry_interval", self.retry_interval, 0, None)
        if self.fee_bucket and self.fee_bucket not in self.buckets:
            raise SettingsError(f"DAO_FEE_BUCKET names {self.fee_bucket!r}, which DAO_BUCKETS does not")

    def _check_service(self) -> None:
        if not self.database_url.startswith(_DATABASE_SCHEMES):
            raise SettingsError(f"DAO_DATABASE_URL must start with one of {', '.join(_DATABASE_SCHEMES)}")
        try:
            make_url(self.database_url)
        except ArgumentError as exc:
            raise SettingsError(f"DAO_DATABASE_URL cannot be read as a database URL: {exc}") from None
        if self.database_timeout <= 0:
            raise SettingsError("DAO_DATABASE_TIMEOUT must be positive")
        if not self.host.strip():
            raise SettingsError("DAO_HOST cannot be empty")
        _in_range("port", self.port, 1, 65_535)
        _no_duplicates("cors_origins", self.cors_origins)
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise SettingsError(f"DAO_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port]) or *")
        _in_range("max_body_bytes", self.max_body_bytes, 1, None)
        _in_range("rate_limit_per_minute", self.rate_limit_per_minute, 0, None)
        _in_range("rate_limit_burst", self.rate_limit_burst, 1, None)
        networks: dict[Any, str] = {}
        for proxy in self.trusted_proxies:
            try:
                net = ipaddress.ip_network(proxy, strict=True)  # an address is a network of one
            except ValueError as exc:
                raise SettingsError(f"DAO_TRUSTED_PROXIES: {proxy!r} is not an IP address or network "
                                    f"(CIDR, host bits zero): {exc}") from None
            if net in networks:
                raise SettingsError(f"DAO_TRUSTED_PROXIES lists {net} twice ({networks[net]!r}, {proxy!r})")
            networks[net] = proxy
        _in_range("scheduler_interval", self.scheduler_interval, 1, None)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes).validate()


_ORIGIN = re.compile(r"https?://[^/\s?#]+")
_DATABASE_SCHEMES = ("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")


def env_name(name: str) -> str:
    """The variable that sets field ``name``: what every settings message names."""
    return f"DAO_{name.upper()}"


def _in_range(name: str, value: int, low: int, high: int | None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise SettingsError(f"{env_name(name)} must be {bound}, not {value}")


def _no_duplicates(name: str, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise SettingsError(f"{env_name(name)} lists {v!r} twice")
        seen.add(v)


def _addresses(name: str, values: Iterable[str], *, evm_only: bool = False) -> None:
    """Every value is an address in its canonical form, none twice (see the module's docstring)."""
    values = tuple(values)
    for a in values:
        if is_checksum_address(a) or (not evm_only and is_solana_address(a)):
            continue
        if isinstance(a, str) and re.fullmatch(r"0x[0-9a-fA-F]{40}", a):
            raise SettingsError(f"{env_name(name)}: {a} is not EIP-55 checksummed; write it in the mixed case a "
                                f"wallet or block explorer shows (a lower-case address carries no checksum, so "
                                f"a typo in it would go unnoticed)")
        want = "an EIP-55 checksummed 0x address" + ("" if evm_only else " or a base58 Solana address")
        raise SettingsError(f"{env_name(name)}: {a!r} is not {want}")
    _no_duplicates(name, values)


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
    except (ValueError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise SettingsError(f"{env_name(name)}: cannot read {raw!r} as {typ}") from exc
    raise SettingsError(f"{env_name(name)}: unsupported type {typ}")


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file named by ``DAO_CONFIG`` (if any), then ``DAO_<FIELD>``."""
    env = dict(os.environ if env is None else env)
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    config_path = env.get("DAO_CONFIG")
    if config_path:
        try:
            with Path(config_path).open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"DAO_CONFIG: cannot read {config_path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"DAO_CONFIG: {config_path} is not TOML: {exc}") from None
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
