"""On-chain transfers from the treasury account (web3), in steps a restart can resume.

The executor signs a transfer and stores the signed bytes and hash *before* broadcasting.
Broadcasting the same signed bytes again is harmless (same hash, same nonce): a node either
takes it or says it already knows it. So after a crash the executor re-broadcasts what it
stored and waits for that hash's receipt; it never signs a second transfer for the same
execution while the first one may still land.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from governance.errors import ServiceUnavailable, Unprocessable
from governance.failpoints import failpoint
from governance.settings import Settings, SettingsError

log = logging.getLogger("treasury_exec.chain")

ERC20_ABI = [
    {"name": "transfer", "type": "function", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "Transfer", "type": "event", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")


@dataclass(frozen=True)
class ChainAsset:
    symbol: str
    decimals: int
    mode: str  # "chain": the service sends; "external": an executor sends and reports
    token: str | None = None  # ERC-20 contract; None for the chain's native coin

    @property
    def native(self) -> bool:
        return self.token is None


_ASSET_KEYS = {"token", "native", "decimals", "mode"}
_SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,32}")  # a journal asset (32 characters at most)


def parse_assets(raw: str) -> dict[str, ChainAsset]:
    """``DAO_CHAIN_ASSETS`` → assets. Refuses what it cannot use, at start (:class:`SettingsError`
    naming the setting): not a JSON object, a symbol twice, an unknown key (a misspelt ``mode``
    would silently send from the treasury), a token address not EIP-55 checksummed, one token or
    the native coin under two symbols, decimals that are not an integer 0..77."""
    if not raw.strip():
        return {}

    def no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise SettingsError(f"DAO_CHAIN_ASSETS names {twice[0]!r} twice")
        return dict(pairs)

    try:
        data = json.loads(raw, object_pairs_hook=no_twice)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"DAO_CHAIN_ASSETS is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError('DAO_CHAIN_ASSETS must be a JSON object: {"SYMBOL": {"token": "0x…", …}, …}')
    out: dict[str, ChainAsset] = {}
    seen: dict[str | None, str] = {}  # token address (None: the native coin) -> its symbol
    for symbol, cfg in data.items():
        where = f"DAO_CHAIN_ASSETS: asset {symbol!r}"
        if not _SYMBOL.fullmatch(symbol):
            raise SettingsError(f"{where}: a symbol is 1 to 32 letters, digits, '.', '_' or '-'")
        if not isinstance(cfg, dict):
            raise SettingsError(f"{where}: give an object with token or native, decimals and mode")
        unknown = sorted(set(cfg) - _ASSET_KEYS)
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {unknown}; the keys are {sorted(_ASSET_KEYS)}")
        mode = cfg.get("mode", "chain")
        if mode not in ("chain", "external"):
            raise SettingsError(f"{where}: mode is chain or external")
        native = cfg.get("native", False)
        if not isinstance(native, bool):
            raise SettingsError(f"{where}: native is true or false")
        token = cfg.get("token")
        if native == (token is not None):
            raise SettingsError(f"{where}: give either an EIP-55 'token' address or 'native': true")
        if token is not None and not (isinstance(token, str) and Web3.is_checksum_address(token)):
            raise SettingsError(f"{where}: 'token' must be an EIP-55 checksummed address, not {token!r}")
        if token in seen:
            raise SettingsError(f"{where}: {'the native coin' if native else token} is already asset {seen[token]!r}")
        seen[token] = symbol
        decimals = cfg.get("decimals", 18)
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 77:
            raise SettingsError(f"{where}: decimals is an integer from 0 to 77")
        out[symbol] = ChainAsset(symbol=symbol, decimals=decimals, mode=mode, token=token)
    return out


@dataclass(frozen=True)
class SignedTransfer:
    tx_hash: str
    raw: str  # 0x-hex of the signed transaction
    nonce: int


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    ok: bool
    block: int
    confirmations: int


def load_treasury_account(settings: Settings) -> LocalAccount:
    """The treasury key, from an encrypted keystore or the environment. Never logged."""
    if settings.treasury_key_file:
        with open(settings.treasury_key_file, encoding="utf-8") as fh:
            keystore = json.load(fh)
        return Account.from_key(Account.decrypt(keystore, settings.treasury_key_password))
    if settings.treasury_private_key:
        return Account.from_key(settings.treasury_private_key)
    raise ServiceUnavailable("no treasury key is configured (DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY)",
                             code="treasury_key_missing")


class ChainClient:
    """The few chain operations execution needs, with RPC failures as 503s."""

    def __init__(self, rpc_url: str, *, timeout: float = 10.0, w3: Web3 | None = None):
        self.w3 = w3 or Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (TransactionNotFound, Unprocessable):
            raise
        except Web3RPCError:
            raise
        except Exception as exc:  # connection refused, timeouts, malformed answers
            raise ServiceUnavailable(f"the chain RPC failed: {type(exc).__name__}", code="rpc_unavailable") from exc

    def pending_nonce(self, address: str) -> int:
        return self._call(self.w3.eth.get_transaction_count, address, "pending")

    def sign_transfer(self, account: LocalAccount, asset: ChainAsset, recipient: str, amount: int,
                      nonce: int) -> SignedTransfer:
        eth = self.w3.eth
        chain_id = self._call(lambda: eth.chain_id)
        tip = self._call(lambda: eth.max_priority_fee)
        base = self._call(eth.get_block, "latest")["baseFeePerGas"]
        tx: dict[str, Any] = {"from": account.address, "nonce": nonce, "chainId": chain_id,
                              "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}
        if asset.native:
            tx |= {"to": Web3.to_checksum_address(recipient), "value": amount, "gas": 21_000}
        else:
            token = eth.contract(address=asset.token, abi=ERC20_ABI)
            call = token.functions.transfer(Web3.to_checksum_address(recipient), amount)
            tx["gas"] = int(self._call(call.estimate_gas, {"from": account.address}) * 12 // 10)
            tx = call.build_transaction(tx)
        signed = account.sign_transaction(tx)
        return SignedTransfer(tx_hash="0x" + signed.hash.hex().removeprefix("0x"),
                              raw="0x" + signed.raw_transaction.hex().removeprefix("0x"), nonce=nonce)

    def broadcast(self, signed: SignedTransfer) -> None:
        """Send the stored bytes; a node that already has them (or mined them) is fine."""
        try:
            self._call(self.w3.eth.send_raw_transaction, signed.raw)
            failpoint("after_broadcast")
        except Web3RPCError as exc:
            text = str(exc).lower()
            if any(s in text for s in ("already known", "nonce too low", "already imported", "known transaction")):
                log.info("transaction %s was already broadcast", signed.tx_hash)
                return
            raise

    def receipt(self, tx_hash: str) -> Receipt | None:
        try:
            r = self._call(self.w3.eth.get_transaction_receipt, tx_hash)
        except TransactionNotFound:
            return None
        head = self._call(lambda: self.w3.eth.block_number)
        return Receipt(tx_hash=tx_hash, ok=r["status"] == 1, block=r["blockNumber"],
                       confirmations=head - r["blockNumber"] + 1)

    def transfer_matches(self, tx_hash: str, asset: ChainAsset, sender: str | None, recipient: str,
                         amount: int) -> tuple[bool, str]:
        """Whether a mined, successful transaction moved exactly ``amount`` of ``asset`` to
        ``recipient`` (used to check what an external executor reports)."""
        rec = self.receipt(tx_hash)
        if rec is None:
            return False, "no such transaction on chain"
        if not rec.ok:
            return False, "the transaction reverted"
        if asset.native:
            tx = self._call(self.w3.eth.get_transaction, tx_hash)
            ok = (tx["to"] or "").lower() == recipient.lower() and tx["value"] == amount
            return ok, "" if ok else "the transaction does not pay that amount to the recipient"
        r = self._call(self.w3.eth.get_transaction_receipt, tx_hash)
        for lg in r["logs"]:
            if lg["address"].lower() != asset.token.lower() or not lg["topics"] or lg["topics"][0] != TRANSFER_TOPIC:
                continue
            to = "0x" + lg["topics"][2].hex()[-40:]
            value = int.from_bytes(bytes(lg["data"]), "big")
            frm = "0x" + lg["topics"][1].hex()[-40:]
            sender_ok = sender is None or frm.lower() == sender.lower()
            if to.lower() == recipient.lower() and value == amount and sender_ok:
                return True, ""
        return False, "no Transfer of that amount to the recipient in the transaction"
