"""The ports the treasury provides: the token ledger, what proposal validation reads, the
execution section of a proposal, and the guard against cancelling a transfer in flight.

Wiring also checks, at start, the settings execution depends on: the chain assets, the RPC
endpoint they need, and the treasury key a ``chain`` asset is sent with."""

from __future__ import annotations

import json

from eth_account import Account
from sqlmodel import Session

from governance.ports import CANCEL_GUARD, TOKEN_LEDGER, TREASURY
from governance.runtime import Runtime
from governance.settings import Settings, SettingsError
from proposals.views import register_view
from treasury_exec import service
from treasury_exec.chain import ChainAsset, parse_assets
from treasury_exec.executions import cancel_guard
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
    """The treasury account's address, once its key loads; the messages never show the key."""
    if settings.treasury_key_file:
        try:
            with open(settings.treasury_key_file, encoding="utf-8") as fh:
                keystore = json.load(fh)
        except OSError as exc:
            raise SettingsError(f"DAO_TREASURY_KEY_FILE: cannot read {settings.treasury_key_file}: "
                                f"{exc.strerror}") from None
        except (ValueError, UnicodeDecodeError):
            raise SettingsError(f"DAO_TREASURY_KEY_FILE: {settings.treasury_key_file} is not a JSON "
                                f"keystore") from None
        try:
            key = Account.decrypt(keystore, settings.treasury_key_password)
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise SettingsError("DAO_TREASURY_KEY_PASSWORD does not decrypt the keystore in "
                                    "DAO_TREASURY_KEY_FILE") from None
            raise SettingsError(f"DAO_TREASURY_KEY_FILE: {settings.treasury_key_file} is not a keystore "
                                f"eth-account can decrypt") from None
        except Exception:  # a keystore missing its fields: KeyError, TypeError and the like
            raise SettingsError(f"DAO_TREASURY_KEY_FILE: {settings.treasury_key_file} is not a keystore "
                                f"eth-account can decrypt") from None
        return Account.from_key(key).address
    if settings.treasury_private_key:
        try:
            return Account.from_key(settings.treasury_private_key).address
        except Exception:  # never chained: the exception may quote the key
            raise SettingsError("DAO_TREASURY_PRIVATE_KEY is not a secp256k1 private key "
                                "(32 bytes, hex)") from None
    raise SettingsError(f"DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY: the treasury sends "
                        f"{', '.join(needed_by)} itself (mode chain in DAO_CHAIN_ASSETS) and no key is "
                        f"configured")


def wire(runtime: Runtime) -> None:
    assets = check_settings(runtime.settings)
    runtime.ports[TOKEN_LEDGER] = TokenLedgerPort()
    runtime.ports[TREASURY] = TreasuryReaderPort(assets)
    runtime.ports[CANCEL_GUARD] = cancel_guard
    register_view(runtime, execution_sections)
