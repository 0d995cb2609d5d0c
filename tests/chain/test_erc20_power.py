"""The erc20 power source against a real anvil node: weights and totals at the snapshot block
do not move when tokens move afterwards."""

from __future__ import annotations

import pytest

from governance.errors import ServiceUnavailable
from voting.erc20 import Erc20PowerSource

TOKEN = 10**18


@pytest.fixture(params=["PlainToken", "VotesToken"])
def token(request, anvil, deploy):
    c = deploy(request.param, "Session", "SES")
    a, b, c_, treasury = anvil.accounts[1:5]
    for who, amount in ((a, 60), (b, 30), (treasury, 10)):
        c.functions.mint(who, amount * TOKEN).transact({"from": anvil.accounts[0]})
    if request.param == "VotesToken":
        for who in (a, b, c_, treasury):
            c.functions.delegate(who).transact({"from": who})  # votes count once delegated
    anvil.mine(3)
    return c


def test_detects_votes_or_plain(anvil, token) -> None:
    src = Erc20PowerSource(anvil.w3, token.address, confirmations=1)
    assert src.is_votes == ("delegate" in [f["name"] for f in token.abi if f.get("type") == "function"])


def test_weights_are_fixed_at_the_snapshot(anvil, token) -> None:
    a, b, late, treasury = anvil.accounts[1:5]
    src = Erc20PowerSource(anvil.w3, token.address, confirmations=2)
    anvil.mine(2)
    snap = src.snapshot()
    assert snap == anvil.w3.eth.block_number - 2
    assert src.weight(a, snap) == 60 * TOKEN
    assert src.weight(treasury, snap) == 10 * TOKEN
    # what the token says; excluded accounts are taken out on top (tests/chain/test_erc20_excluded.py)
    assert src.total(snap) == 100 * TOKEN

    # after the snapshot: a sends 50 to late, and 1000 new tokens are minted to late
    token.functions.transfer(late, 50 * TOKEN).transact({"from": a})
    token.functions.mint(late, 1000 * TOKEN).transact({"from": anvil.accounts[0]})
    anvil.mine(3)
    assert src.weight(a, snap) == 60 * TOKEN  # moved away after the snapshot: still counts
    assert src.weight(late, snap) == 0  # acquired after the snapshot: no weight
    assert src.weight(b, snap) == 30 * TOKEN
    assert src.total(snap) == 100 * TOKEN  # minted after the snapshot: not in the base
    later = src.snapshot()
    assert src.weight(late, later) == 1050 * TOKEN
    assert src.total(later) == 1100 * TOKEN


def test_solana_address_has_no_erc20_weight(anvil, token) -> None:
    src = Erc20PowerSource(anvil.w3, token.address, confirmations=1)
    assert src.weight("EbDhQcM3eek2WvsfHpd43cuiwbLbbyGo7BsnZyV2Bxku", src.snapshot()) == 0


def test_rpc_down_is_service_unavailable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    src = Erc20PowerSource(f"http://127.0.0.1:{port}", "0x" + "11" * 20, timeout=2)
    with pytest.raises(ServiceUnavailable) as info:
        src.snapshot()
    assert info.value.code == "rpc_unavailable"
