"""Real ``dao serve``, ``dao scheduler`` and ``dao init`` processes refuse to start on a setting
the service cannot run with: exit status 1, one message naming the setting, nothing served and
nothing written, rather than a service that starts and answers 500 later."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session

from governance.bootstrap import bootstrap
from governance.db import create_engine
from governance.models import Deployment
from governance.settings import load_settings
from tests.support.processes import dao_env, deployment, free_port

pytestmark = pytest.mark.slow

GUARDIAN = Account.create().address
TOKEN = Account.create().address
RPC = "http://127.0.0.1:9"  # nothing listens there (the discard port)


def keystore(tmp_path: Path) -> str:
    path = tmp_path / "treasury.json"
    path.write_text(json.dumps(Account.encrypt(Account.create().key, "right horse", kdf="pbkdf2", iterations=1000)))
    return str(path)


# (case, settings as environment variables, the setting the message must name). One case per
# kind of check; every check has its unit test (tests/unit/test_settings.py, test_startup_wiring.py).
CASES = {
    "lowercase-guardian": (lambda tmp: {"DAO_GUARDIANS": GUARDIAN.lower()}, "DAO_GUARDIANS"),
    "asset-lowercase-token": (lambda tmp: {"DAO_RPC_URL": RPC, "DAO_CHAIN_ASSETS": json.dumps(
        {"USDC": {"token": TOKEN.lower(), "mode": "external"}})}, "DAO_CHAIN_ASSETS"),
    "wrong-keystore-password": (lambda tmp: {"DAO_RPC_URL": RPC, "DAO_TREASURY_KEY_FILE": keystore(tmp),
                                             "DAO_TREASURY_KEY_PASSWORD": "wrong horse", "DAO_CHAIN_ASSETS": json.dumps(
        {"USDC": {"token": TOKEN, "mode": "chain"}})}, "DAO_TREASURY_KEY_PASSWORD"),
    "malformed-trusted-proxy": (lambda tmp: {"DAO_TRUSTED_PROXIES": "localhost"}, "DAO_TRUSTED_PROXIES"),
    # well-formed settings, but nothing answers there (tests/chain: a token without a contract)
    "unreachable-rpc": (lambda tmp: {"DAO_RPC_URL": RPC, "DAO_CHAIN_ASSETS": json.dumps(
        {"USDC": {"token": TOKEN, "mode": "external", "senders": [GUARDIAN]}})}, "DAO_RPC_URL"),
}
COMMANDS = {
    "serve": ["serve", "--no-scheduler"],
    "scheduler": ["scheduler"],
    "init": ["init"],
}
REFUSE_WITHIN = 90  # seconds: imports on a busy machine; a process that started runs until then


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    if command[0] == "serve":
        command = [*command, "--port", str(free_port())]
    return subprocess.Popen([sys.executable, "-m", "governance.cli", *command], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def outcome(proc: subprocess.Popen) -> tuple[int | None, str]:
    try:
        _, err = proc.communicate(timeout=REFUSE_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err  # it started: it did not refuse
    return proc.returncode, err


@pytest.mark.parametrize("case", list(CASES))
def test_processes_refuse_to_start_naming_the_setting(database_url: str, tmp_path: Path, case: str) -> None:
    settings, setting = CASES[case]
    extra = settings(tmp_path)
    clock = tmp_path / "clock"
    rt, _ = deployment(database_url, tmp_path)  # initialised: the setting is the only problem
    rt.close()
    env = dao_env(database_url, clock, **extra)
    # dao init gets a database of its own, migrated but never initialised: it must stay so
    fresh = tmp_path / "fresh.db"
    init_env = dao_env(f"sqlite:///{fresh}", clock, **extra)

    procs = {name: start(cmd, init_env if name == "init" else env) for name, cmd in COMMANDS.items()}
    results = {name: outcome(p) for name, p in procs.items()}
    for name, (code, err) in results.items():
        assert code == 1, f"dao {name} with {case}: exit {code}, expected a refusal; stderr: {err[-2000:]}"
        assert "Traceback" not in err, f"dao {name}: {err[-2000:]}"
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"Error: settings: {setting}"), f"dao {name}: {err[-2000:]}"
    assert not fresh.exists(), "dao init wrote the database before checking the settings"


def test_init_refuses_before_writing_an_existing_database(database_url: str, tmp_path: Path) -> None:
    """Against a migrated, uninitialised database (SQLite and PostgreSQL): no deployment made."""
    env = dao_env(database_url, tmp_path / "clock", DAO_GUARDIANS=GUARDIAN.lower())
    code, err = outcome(start(["init"], env))
    assert code == 1 and err.strip().splitlines()[-1].startswith("Error: settings: DAO_GUARDIANS"), err
    engine = create_engine(database_url)
    with Session(engine) as s:
        assert s.get(Deployment, 1) is None
    engine.dispose()
    # and the same command with the setting fixed initialises it
    ok = subprocess.run([sys.executable, "-m", "governance.cli", "init"], text=True, capture_output=True,
                        timeout=REFUSE_WITHIN, env=dao_env(database_url, tmp_path / "clock", DAO_GUARDIANS=GUARDIAN),
                        check=False)
    assert ok.returncode == 0, ok.stderr[-2000:]
    rt = bootstrap(load_settings(env={}, database_url=database_url))
    assert rt.load_deployment().salt.startswith("0x")
    rt.close()


@pytest.mark.parametrize("command", ["serve", "scheduler"])
def test_processes_refuse_a_database_without_a_deployment(database_url: str, tmp_path: Path, command: str) -> None:
    """A migrated database nobody initialised: no process serves or schedules; the message names
    the database (a 503 per request before)."""
    code, err = outcome(start(COMMANDS[command], dao_env(database_url, tmp_path / "clock")))
    assert code == 1 and "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: the database ") and database_url.rsplit("/", 1)[1] in last, err[-2000:]
    assert last.endswith("holds no deployment: run `dao init` first"), err[-2000:]
