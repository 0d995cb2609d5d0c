"""What the treasury gives the composition root (governance.bootstrap): the token ledger, the
journal's head, what proposal validation reads, the guard against cancelling a transfer in
flight, the execution section of a proposal, and the chain assets with their RPC client.

Building them checks, at start, the settings execution depends on: the chain assets, the RPC
endpoint they need, and the treasury key a ``chain`` asset is sent with."""

from __future__ import annotations

import json
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlmodel import Session

from governance.ports import CancelGuard, JournalReader, TokenLedger
from governance.runtime import ExecutionViews
from governance.settings import Settings, SettingsError
from treasury_exec import ledger, service
from treasury_exec.chain import ChainAsset, ChainClient, load_treasury_account, parse_assets
from treasury_exec.executions import cancel_guard
from treasury_exec.journal import JournalReaderPort
from treasury_exec.views import execution_sections


class TreasuryReaderPort:
    def __init__(self, assets: dict[str, ChainAsset]):
        self._assets = {service.USD: "any"}
        self._assets |= {symbol: "evm" for symbol in assets}

    def price_in_force(self, session: Session) -> int:
        return service.price_in_force(session)

    def bucket_balance(self, session: Session, bucket: str, asset: str) -> int:
        return service.bucket_balance(session, bucket, asset)

    def assets(self) -> dict[str, str]:
        return dict(self._assets)


def check_settings(settings: Settings) -> tuple[dict[str, ChainAsset], LocalAccount | None]:
    """The chain assets and the treasury account that sends them, once everything they need is
    there (:class:`SettingsError` otherwise)."""
    assets = parse_assets(settings.chain_assets)
    for reserved in (service.USD, settings.token_symbol):
        if reserved in assets:
            raise SettingsError(f"DAO_CHAIN_ASSETS: {reserved!r} is the journal's own "
                                f"{'revenue asset' if reserved == service.USD else 'token (DAO_TOKEN_SYMBOL)'}; "
                                f"name the on-chain asset otherwise")
    if assets and not settings.rpc_url:
        raise SettingsError("DAO_RPC_URL is empty, but DAO_CHAIN_ASSETS lists on-chain assets: transfers are "
                            "sent or checked through it")
    sent = sorted(symbol for symbol, a in assets.items() if a.mode == "chain")
    native = next((symbol for symbol, a in assets.items() if a.native and a.mode == "chain"), None)
    if native and not settings.fee_bucket:
        raise SettingsError(f"DAO_FEE_BUCKET is empty, but the native coin is asset {native!r}, sent by the service "
                            f"(mode chain in DAO_CHAIN_ASSETS): name the bucket that pays the treasury account's "
                            f"network fees, or the journal's {native} drifts above what the account holds")
    if settings.fee_bucket and not native:
        raise SettingsError("DAO_FEE_BUCKET is set, but no native-coin asset has mode chain in DAO_CHAIN_ASSETS: "
                            "only then does the journal hold the coin fees are paid in; leave it empty")
    account = None
    if sent or settings.treasury_key_file or settings.treasury_private_key:
        account = check_treasury_key(settings, needed_by=sent)
    return assets, account


def check_treasury_key(settings: Settings, *, needed_by: list[str]) -> LocalAccount:
    """The treasury account, loaded (:func:`~treasury_exec.chain.load_treasury_account`); the
    messages never show the key."""
    if not (settings.treasury_key_file or settings.treasury_private_key):
        raise SettingsError(f"DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY: the treasury sends "
                            f"{', '.join(needed_by)} itself (mode chain in DAO_CHAIN_ASSETS) and no key is "
                            f"configured")
    path = settings.treasury_key_file
    try:
        return load_treasury_account(settings)
    except OSError as exc:
        problem = f"DAO_TREASURY_KEY_FILE: cannot read {path}: {exc.strerror}"
    except json.JSONDecodeError:
        problem = f"DAO_TREASURY_KEY_FILE: {path} is not a JSON keystore"
    except Exception as exc:  # never chained below: an exception may quote the key
        if not path:
            problem = "DAO_TREASURY_PRIVATE_KEY is not a secp256k1 private key (32 bytes, hex)"
        elif isinstance(exc, ValueError) and "MAC mismatch" in str(exc):
            problem = "DAO_TREASURY_KEY_PASSWORD does not decrypt the keystore in DAO_TREASURY_KEY_FILE"
        else:
            problem = f"DAO_TREASURY_KEY_FILE: {path} is not a keystore eth-account can decrypt"
    raise SettingsError(problem)


@dataclass(frozen=True)
class TreasuryParts:
    token_ledger: TokenLedger
    journal: JournalReader
    treasury: TreasuryReaderPort
    cancel_guard: CancelGuard
    execution_views: ExecutionViews
    chain_assets: dict[str, ChainAsset]
    chain_client: ChainClient | None
    treasury_account: LocalAccount | None


def build(settings: Settings) -> TreasuryParts:
    """The treasury's parts, once the settings they need check out (:class:`SettingsError`)."""
    assets, account = check_settings(settings)
    return TreasuryParts(
        token_ledger=ledger, journal=JournalReaderPort(), treasury=TreasuryReaderPort(assets),
        cancel_guard=cancel_guard, execution_views=execution_sections, chain_assets=assets,
        # the client connects on its first call: building it here reaches nothing
        chain_client=ChainClient(settings.rpc_url) if settings.rpc_url else None, treasury_account=account,
    )
