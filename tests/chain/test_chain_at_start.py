"""The chain a deployment's settings point at is checked when a process that runs the service
starts: a token address holding no contract on the RPC's chain (copied from another network,
or the RPC serves another chain) stops ``dao scheduler`` and ``dao serve`` naming the setting,
where it had let every transfer to it succeed and pay nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from tests.support.processes import dao, dao_env, deployment, free_port


def asset(token: str) -> str:
    return json.dumps({"USDC": {"token": token, "decimals": 18, "mode": "external", "senders": [token]}})


@pytest.mark.parametrize("command", [["scheduler", "--once"], ["serve", "--no-scheduler"]])
def test_a_token_without_a_contract_stops_the_process(anvil, deploy, database_url: str, tmp_path: Path,
                                                       command: list[str]) -> None:
    rt, _ = deployment(database_url, tmp_path)
    rt.close()
    nowhere = Account.create().address
    env = dao_env(database_url, tmp_path / "clock", DAO_RPC_URL=anvil.rpc_url, DAO_CHAIN_ASSETS=asset(nowhere))
    if command[0] == "serve":
        command = [*command, "--port", str(free_port())]
    refused = dao(*command, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("Error: settings: DAO_CHAIN_ASSETS (USDC)")
    assert nowhere in refused.stderr and "chain id 31337" in refused.stderr

    token = deploy("PlainToken", "USD Coin", "USDC").address  # the same settings with a real token
    ok = dao("scheduler", "--once", env={**env, "DAO_CHAIN_ASSETS": asset(token)})
    assert ok.returncode == 0, ok.stdout + ok.stderr
