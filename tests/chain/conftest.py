"""A real Ethereum node (anvil, from npm) and contracts compiled from contracts/*.sol.

Chain tests skip on a machine without node_modules; with ``DAO_REQUIRE_CHAIN=1`` (CI) they
fail instead. Every test here is marked ``chain``: ``-m "not chain"`` leaves them out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.chain)


def _require(reason: str) -> None:
    if os.environ.get("DAO_REQUIRE_CHAIN") == "1":
        pytest.fail(f"DAO_REQUIRE_CHAIN=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Anvil:
    rpc_url: str
    process: subprocess.Popen
    w3: Web3

    @property
    def accounts(self) -> list[str]:
        return self.w3.eth.accounts

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])


@pytest.fixture(scope="session")
def anvil() -> Anvil:
    if not ANVIL.exists() or shutil.which("node") is None:
        _require("anvil (npm @foundry-rs/anvil) is not installed: run npm install")
    # port 0: anvil binds a port the system picks and says which. A port picked here and passed
    # in could be taken by another test session between the two (another anvil then answers,
    # and two sessions would share one chain's accounts)
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    said: list[str] = []
    for line in proc.stdout:
        said.append(line)
        if line.startswith("Listening on "):
            break
    else:
        proc.kill()
        pytest.fail(f"anvil did not start: {''.join(said)[-2000:]}")
    url = "http://" + line.removeprefix("Listening on ").strip()
    # it logs every request from now on: keep reading, or a full pipe would stop it
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    if w3.eth.chain_id != 31337:
        proc.kill()
        pytest.fail(f"the node at {url} is not the anvil just started")
    yield Anvil(url, proc, w3)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def contracts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ABI and bytecode of every contract in contracts/, compiled once per source version."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "solc").is_dir():
        _require("solc (npm) is not installed: run npm install")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((ROOT / "contracts").glob("*.sol"))))
    cache = Path(os.environ.get("DAO_CONTRACTS_CACHE", tmp_path_factory.getbasetemp().parent)) / \
        f"contracts-{digest.hexdigest()[:16]}.json"
    if not cache.exists():
        run = subprocess.run([node, str(ROOT / "tests" / "chain" / "compile.mjs")], capture_output=True, text=True,
                             cwd=ROOT, timeout=300, check=False)
        if run.returncode != 0:
            pytest.fail(f"solc failed: {run.stderr}")
        cache.write_text(run.stdout)
    return json.loads(cache.read_text())


@pytest.fixture(scope="session")
def deploy(anvil: Anvil, contracts: dict):
    """deploy(name, *args, sender=account) -> a web3 contract at its new address."""

    def _deploy(name: str, *args, sender: str | None = None):
        art = contracts[name]
        factory = anvil.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(*args).transact({"from": sender or anvil.accounts[0]})
        receipt = anvil.w3.eth.wait_for_transaction_receipt(tx)
        return anvil.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    return _deploy


@pytest.fixture
def lagging_rpc(anvil: Anvil):
    """A JSON-RPC proxy in front of anvil (``rpcproxy.LaggingRpc``), honest until a test sets
    ``lag`` or ``keep_state``."""
    from tests.chain.rpcproxy import LaggingRpc

    proxy = LaggingRpc(anvil.rpc_url)
    yield proxy
    proxy.close()
