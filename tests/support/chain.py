"""Deployments that move tokens on a real anvil node (tests/chain): their settings."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.processes import SETTINGS

USDC = 10**18  # one whole unit of the test token (18 decimals)


def settings_for(anvil, token: str, key: str, clock_file: Path, database_url: str) -> dict:
    """Settings of a deployment whose USDC is the ``token`` contract on ``anvil``, paid from the
    treasury ``key`` (``mode: chain``), with one confirmation and the clock in ``clock_file``."""
    return {**SETTINGS, "database_url": database_url, "rpc_url": anvil.rpc_url, "confirmations": 1,
            "treasury_private_key": key,
            "chain_assets": json.dumps({"USDC": {"token": token, "decimals": 18, "mode": "chain"}}),
            "test_clock_file": str(clock_file)}
