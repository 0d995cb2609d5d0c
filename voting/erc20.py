"""The ``erc20`` voting-power source: an ERC-20 token read with web3 at the snapshot block.

For an ERC20Votes token (OpenZeppelin; block-number clock) the weight is ``getPastVotes`` —
delegated votes, so holders self-delegate as on any Governor — and the total is
``getPastTotalSupply``. For a plain ERC-20, ``balanceOf`` and ``totalSupply`` are read at the
snapshot block (the node must keep that state: an archive node for old blocks).

The snapshot is ``latest − max(confirmations, 1)``: at least one block in the past, because
ERC20Votes refuses a timepoint that is not (``ERC5805FutureLookup``), and confirmations keep
a reorg from changing the weights under a live proposal.
"""

from __future__ import annotations

import functools

from web3 import Web3
from web3.exceptions import ContractLogicError

from governance.errors import ServiceUnavailable

_CACHED = 200_000  # (address, block) weights kept: a large proposal's voters, a few bytes each

ABI = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "totalSupply", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "getPastVotes", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "address"}, {"name": "t", "type": "uint256"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "getPastTotalSupply", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "t", "type": "uint256"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "CLOCK_MODE", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
]


class Erc20PowerSource:
    """What the token says: weights and supply at a block. Excluded accounts are taken out on
    top of it, as for every source (``voting.power.ExcludingAccounts``)."""

    def __init__(self, rpc: str | Web3, token: str, *, confirmations: int = 2, timeout: float = 10.0):
        self.w3 = rpc if isinstance(rpc, Web3) else Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
        self.token = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ABI)
        self.confirmations = max(confirmations, 1)
        self._votes: bool | None = None
        # what the token said at a confirmed past block does not change: kept, so that a caller
        # can ask before it takes a database lock and ask again under it without the node
        self.weight = functools.lru_cache(maxsize=_CACHED)(self._weight)  # type: ignore[method-assign]
        self.total = functools.lru_cache(maxsize=1024)(self._total)  # type: ignore[method-assign]

    def _rpc(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ContractLogicError:
            raise
        except Exception as exc:  # web3's errors, requests' connection errors and the like
            raise ServiceUnavailable(f"the chain RPC failed ({type(exc).__name__}); nothing was stored",
                                     code="rpc_unavailable") from exc

    @property
    def is_votes(self) -> bool:
        """Whether the token keeps vote checkpoints (ERC-5805 on the block-number clock)."""
        if self._votes is None:
            try:
                mode = self._rpc(self.token.functions.CLOCK_MODE().call)
                self._votes = "mode=blocknumber" in mode
            except ContractLogicError:
                self._votes = False
        return self._votes

    def snapshot(self) -> int:
        latest = self._rpc(lambda: self.w3.eth.block_number)
        return max(latest - self.confirmations, 0)

    def _weight(self, address: str, block: int) -> int:
        if not Web3.is_checksum_address(address):
            return 0  # a Solana address holds no ERC-20
        if self.is_votes:
            return self._rpc(self.token.functions.getPastVotes(address, block).call)
        return self._rpc(self.token.functions.balanceOf(address).call, block_identifier=block)

    def _total(self, block: int) -> int:
        if self.is_votes:
            return self._rpc(self.token.functions.getPastTotalSupply(block).call)
        return self._rpc(self.token.functions.totalSupply().call, block_identifier=block)
