"""The ports the treasury provides: the token ledger, the journal's head, what proposal validation reads, the
execution section of a proposal, and the guard against cancelling a transfer in flight.

Wiring also checks, at start, the settings execution depends on: the chain assets, the RPC
endpoint they need, and the treasury key a ``chain`` asset is sent with."""

from __future__ import annotations

import json

from sqlmodel import Session

from governance.ports import CANCEL_GUARD, JOURNAL, TOKEN_LEDGER, TREASURY
from governance.runtime import Runtime
from governance.settings import Settings, SettingsError
from proposals.views import register_view
from treasury_exec import service
from treasury_exec.chain import ChainAsset, load_treasury_account, parse_assets
from treasury_exec.executions import cancel_guard
from treasury_exec.journal import JournalReaderPort
from treasury_exec.ledger import TokenLedgerPort
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


def check_settings(settings: Settings) -> dict[str, ChainAsset]:
    """The chain assets, once everything they need is there (:class:`SettingsError` otherwise)."""
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
    if sent or settings.treasury_key_file or settings.treasury_private_key:
        check_treasury_key(settings, needed_by=sent)
    return assets


def check_treasury_key(settings: Settings, *, needed_by: list[str]) -> str:
    """The treasury account's address, once its key loads as the executor will load it
    (:func:`~treasury_exec.chain.load_treasury_account`); the messages never show the key."""
    if not (settings.treasury_key_file or settings.treasury_private_key):
        raise SettingsError(f"DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY: the treasury sends "
                            f"{', '.join(needed_by)} itself (mode chain in DAO_CHAIN_ASSETS) and no key is "
                            f"configured")
    path = settings.treasury_key_file
    try:
        return load_treasury_account(settings).address
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


def wire(runtime: Runtime) -> None:
    assets = check_settings(runtime.settings)
    runtime.ports[TOKEN_LEDGER] = TokenLedgerPort()
    runtime.ports[JOURNAL] = JournalReaderPort()
    runtime.ports[TREASURY] = TreasuryReaderPort(assets)
    runtime.ports[CANCEL_GUARD] = cancel_guard
    register_view(runtime, execution_sections)
