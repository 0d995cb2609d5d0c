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
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from governance.errors import ServiceUnavailable
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
    # EIP-55 accounts whose payments an external executor may report as a spend of this asset
    senders: tuple[str, ...] = ()

    @property
    def native(self) -> bool:
        return self.token is None


_ASSET_KEYS = {"token", "native", "decimals", "mode", "senders"}
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
        senders = _senders(symbol, cfg.get("senders", []))
        if mode == "external" and not senders:
            raise SettingsError(f"{where}: mode external needs 'senders', the accounts executors pay from")
        out[symbol] = ChainAsset(symbol=symbol, decimals=decimals, mode=mode, token=token, senders=senders)
    return out


def _senders(symbol: str, raw: object) -> tuple[str, ...]:
    """An asset's allowed senders: a list of distinct EIP-55 addresses (one canonical form, so
    that a completion's payer is compared exactly)."""
    if not isinstance(raw, list) or not all(isinstance(a, str) and Web3.is_checksum_address(a) for a in raw):
        raise SettingsError(f"DAO_CHAIN_ASSETS: asset {symbol!r}: 'senders' is a list of EIP-55 addresses")
    if len(set(raw)) != len(raw):
        raise SettingsError(f"DAO_CHAIN_ASSETS: asset {symbol!r}: 'senders' lists an address twice")
    return tuple(raw)


@dataclass(frozen=True)
class SignedTransfer:
    tx_hash: str
    raw: str  # 0x-hex of the signed transaction
    nonce: int


@dataclass(frozen=True)
class NonceUse:
    """What confirmed blocks show of a nonce (:meth:`ChainClient.nonce_use`): ``free`` (no
    transaction used it yet), ``used`` by ``tx_hash`` (lowercase) in ``block``, or ``unknown``
    (the node could not tell: ``why``)."""

    status: str
    tx_hash: str = ""
    block: int = -1
    why: str = ""


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    ok: bool
    block: int
    confirmations: int
    logs: tuple[Any, ...] = ()  # the events it emitted (a token transfer's Transfer among them)
    fee: int = 0  # native coin its sender paid: gas used × effective gas price, plus a rollup's L1 data fee


def _fee(r: Any) -> int:
    """What a mined transaction cost its sender in the native coin. OP-stack rollups add the
    L1 data fee as ``l1Fee`` (hex or int, as the node's formatter left it)."""
    l1 = r.get("l1Fee") or 0
    return int(r["gasUsed"]) * int(r["effectiveGasPrice"]) + (int(l1, 16) if isinstance(l1, str) else int(l1))


@dataclass(frozen=True)
class TransferCheck:
    """What :meth:`ChainClient.check_transfer` found: ``ok``, or an error ``code`` and why."""

    ok: bool
    code: str = ""
    why: str = ""

    @property
    def retryable(self) -> bool:
        """Whether the same report may pass later: the node has not seen the transaction yet (a
        backend behind the others has no receipt for a block just mined), or it lacks
        confirmations. Everything else about a mined transaction is final."""
        return self.code in RETRYABLE


# what a report of a real payment may meet before the chain has caught up with it
RETRYABLE = ("tx_not_found", "tx_unconfirmed")
_NOT_FOUND = ("the node has no such transaction (yet): one just mined may not have reached the node that "
              "answered; report it again in a few blocks")


def sender_of(raw: str) -> str:
    """The EIP-55 account that signed a raw transaction."""
    return Account.recover_transaction(raw)


def decode(raw: str) -> dict[str, Any]:
    """The fields of a raw (EIP-1559) transaction: nonce, gas, maxFeePerGas, value, …"""
    return TypedTransaction.from_bytes(HexBytes(raw)).as_dict()


def max_cost(tx: dict[str, Any]) -> int:
    """The most a transaction may take from its sender's native balance: its gas limit at its
    maximum fee per gas, plus the value it sends."""
    return tx["gas"] * tx["maxFeePerGas"] + tx.get("value", 0)


def _hex(value: bytes) -> str:
    return "0x" + value.hex().removeprefix("0x").lower()


def token_payers(logs: Any, asset: ChainAsset, recipient: str, amount: int) -> list[str]:
    """The accounts whose tokens moved to ``recipient``, exactly ``amount`` of ``asset``, by the
    token's ``Transfer`` events in ``logs`` (none: the transaction moved nothing of the kind, as
    a call to an address without the token's code does, though it succeeds)."""
    want = Web3.to_checksum_address(recipient)
    payers = []
    for lg in logs:
        if Web3.to_checksum_address(lg["address"]) != asset.token or len(lg["topics"]) != 3 \
                or lg["topics"][0] != TRANSFER_TOPIC:
            continue
        to, value = Web3.to_checksum_address(lg["topics"][2][-20:]), int.from_bytes(bytes(lg["data"]), "big")
        if to == want and value == amount:
            payers.append(Web3.to_checksum_address(lg["topics"][1][-20:]))
    return payers


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
        except (Web3RPCError, ContractLogicError):
            # the node answered, no outage: a refusal, a revert, or no such transaction
            # (web3's TransactionNotFound is a Web3RPCError: callers catch it by name)
            raise
        except Exception as exc:  # connection refused, timeouts, malformed answers
            raise ServiceUnavailable(f"the chain RPC failed: {type(exc).__name__}", code="rpc_unavailable") from exc

    def mined_nonce(self, address: str) -> int:
        """How many transactions ``address`` has in the newest block: the next nonce the chain
        will take from it. Not the node's "pending" count, which counts its mempool: a node
        that says more than it holds would have transfers signed above a gap nothing fills."""
        return self._call(self.w3.eth.get_transaction_count, address, "latest")

    def head_block(self) -> int:
        return self._call(lambda: self.w3.eth.block_number)

    def nonce_use(self, address: str, nonce: int, confirmations: int) -> NonceUse:
        """Which transaction used ``address``'s ``nonce`` in a block with ``confirmations`` on
        top (so no other transaction with that nonce can land), found, never inferred from an
        absence: the first block whose state counts more than ``nonce`` transactions of the
        account (searched downward from the newest confirmed block in doubling steps, then
        bisected), and in that block the account's transaction with that nonce. A node that
        cannot answer (an outage, a backend behind the others, the state of an older block than
        it keeps: nodes other than archive nodes keep about the last 128 blocks) or answers that
        disagree make it ``unknown``, never ``free`` or ``used``."""
        try:
            top = self.head_block() - max(confirmations, 1) + 1
            if top < 0 or self._sent(address, top) <= nonce:
                return NonceUse("free")
            hi, step = top, 1  # the account has sent more than `nonce` transactions by block hi
            while True:
                lo = max(hi - step, 0)
                if self._sent(address, lo) <= nonce:
                    break
                if lo == 0:
                    return NonceUse("unknown", why=f"the node counts nonce {nonce} as used in the genesis block")
                hi, step = lo, 2 * step
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._sent(address, mid) > nonce:
                    hi = mid
                else:
                    lo = mid
            block = self._call(self.w3.eth.get_block, hi, True)
        except (Web3RPCError, ServiceUnavailable) as exc:
            return NonceUse("unknown", why=f"the node could not answer ({str(exc)[:200]})")
        for tx in block["transactions"]:
            if Web3.to_checksum_address(tx["from"]) == Web3.to_checksum_address(address) and tx["nonce"] == nonce:
                return NonceUse("used", tx_hash=_hex(tx["hash"]), block=hi)
        return NonceUse("unknown", why=f"block {hi} holds no transaction of {address} with nonce {nonce}, "
                        "though the node's state says it does")

    def _sent(self, address: str, block: int) -> int:
        """How many transactions ``address`` had sent by the end of ``block``."""
        return self._call(self.w3.eth.get_transaction_count, address, block)

    def transfer_tx(self, sender: str, asset: ChainAsset, recipient: str, amount: int, nonce: int) -> dict[str, Any]:
        """The unsigned transaction paying ``amount`` of ``asset`` from ``sender`` to ``recipient``."""
        eth = self.w3.eth
        chain_id = self._call(lambda: eth.chain_id)
        tip = self._call(lambda: eth.max_priority_fee)
        base = self._call(eth.get_block, "latest")["baseFeePerGas"]
        tx: dict[str, Any] = {"from": sender, "nonce": nonce, "chainId": chain_id,
                              "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}
        if asset.native:
            # estimated: a recipient with code (a Safe, a smart wallet, a splitter) spends gas on
            # receipt, and a transfer limited to 21,000 would revert, burning its fee every retry
            to = Web3.to_checksum_address(recipient)
            gas = int(self._call(eth.estimate_gas, {"from": sender, "to": to, "value": amount}))
            return tx | {"to": to, "value": amount, "gas": gas if gas <= 21_000 else gas * 12 // 10}
        token = eth.contract(address=asset.token, abi=ERC20_ABI)
        call = token.functions.transfer(Web3.to_checksum_address(recipient), amount)
        tx["gas"] = int(self._call(call.estimate_gas, {"from": sender}) * 12 // 10)
        return call.build_transaction(tx)

    def gas_shortfall(self, address: str, tx: dict[str, Any], in_flight: list[str]) -> str | None:
        """Why ``address`` cannot pay for ``tx`` (None when it can): its native balance must cover
        the most ``tx`` may take (:func:`max_cost`) after the most each of ``in_flight`` (raw
        transactions of ours, signed and not mined yet) may take. A node refuses a transaction
        its sender cannot pay for, and a signed transfer then only waits."""
        head = self.head_block()
        balance = self._call(self.w3.eth.get_balance, address, head)
        sent = self._sent(address, head)
        ahead = [t for t in (decode(raw) for raw in in_flight if sender_of(raw) == address) if t["nonce"] >= sent]
        before, cost = sum(map(max_cost, ahead)), max_cost(tx)
        if balance >= before + cost:
            return None
        after = f", after {before} for {len(ahead)} transfer(s) in flight" if ahead else ""
        return (f"the treasury account {address} holds {balance} wei of the native coin; this transfer may take "
                f"up to {cost} (gas {tx['gas']} at most {tx['maxFeePerGas']} wei each, plus a value of "
                f"{tx.get('value', 0)}){after}")

    @staticmethod
    def sign(account: LocalAccount, tx: dict[str, Any]) -> SignedTransfer:
        signed = account.sign_transaction(tx)
        return SignedTransfer(tx_hash=_hex(signed.hash), raw=_hex(signed.raw_transaction), nonce=tx["nonce"])

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
                       confirmations=head - r["blockNumber"] + 1, logs=tuple(r["logs"]), fee=_fee(r))

    def check_transfer(self, tx_hash: str, asset: ChainAsset, *, recipient: str, amount: int,
                       after_block: int, confirmations: int) -> TransferCheck:
        """Whether a transaction an external executor reports pays this spend: mined and
        successful, in a block after ``after_block`` (the claim), moving exactly ``amount``
        of ``asset`` to ``recipient`` from one of the asset's allowed senders, with
        ``confirmations`` blocks on top. The payer is the native transfer's sender, or the
        ``from`` of the token's ``Transfer`` event (the account whose tokens moved)."""
        try:
            r = self._call(self.w3.eth.get_transaction_receipt, tx_hash)
        except TransactionNotFound:
            return TransferCheck(False, "tx_not_found", _NOT_FOUND)
        if r["status"] != 1:
            return TransferCheck(False, "tx_mismatch", "the transaction reverted")
        block = r["blockNumber"]
        if block <= after_block:
            return TransferCheck(False, "tx_before_claim", f"it was mined in block {block}, not after the claim "
                                 f"(block {after_block})")
        if asset.native:
            try:
                tx = self._call(self.w3.eth.get_transaction, tx_hash)
            except TransactionNotFound:  # a node behind the one that served the receipt
                return TransferCheck(False, "tx_not_found", _NOT_FOUND)
            paid = tx["to"] is not None and Web3.to_checksum_address(tx["to"]) == Web3.to_checksum_address(
                recipient) and tx["value"] == amount
            payers = [Web3.to_checksum_address(tx["from"])] if paid else []
        else:
            payers = token_payers(r["logs"], asset, recipient, amount)
        if not payers:
            return TransferCheck(False, "tx_mismatch", f"it does not pay {amount} {asset.symbol} to the recipient")
        if not set(payers) & set(asset.senders):
            return TransferCheck(False, "sender_not_allowed", f"it pays from {', '.join(payers)}, not from a sender "
                                 f"DAO_CHAIN_ASSETS allows for {asset.symbol}")
        have = self.head_block() - block + 1
        if have < max(confirmations, 1):
            return TransferCheck(False, "tx_unconfirmed", f"it has {have} confirmations; {confirmations} needed")
        return TransferCheck(True)
