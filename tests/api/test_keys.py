"""dao keys create / list / revoke, and their effect on the API."""

from __future__ import annotations

from click.testing import CliRunner

from governance.cli import main
from tests.support import Wallet


def test_keys_lifecycle_through_the_cli(client, database_url, monkeypatch) -> None:
    monkeypatch.setenv("DAO_DATABASE_URL", database_url)
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--role", "operator", "--label", "shop"])
    assert made.exit_code == 0, made.output
    key_id = int(made.output.split()[1])
    secret = made.output.strip().splitlines()[-1]
    assert secret.startswith("dao_op_")

    listed = runner.invoke(main, ["keys", "list"])
    assert "operator" in listed.output and "shop" in listed.output and "active" in listed.output
    assert secret not in listed.output  # only the prefix is ever shown again

    body = {"buyer": Wallet.evm().address, "payment": 100_000, "reference": "k1"}
    ok = client.post("/v1/treasury/purchases", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 201

    revoked = runner.invoke(main, ["keys", "revoke", str(key_id)])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list", "--role", "operator"]).output
    body["reference"] = "k2"
    denied = client.post("/v1/treasury/purchases", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert denied.status_code == 401 and denied.json()["error"] == "revoked_api_key"

    missing = runner.invoke(main, ["keys", "revoke", "999"])
    assert missing.exit_code != 0 and "no API key" in missing.output


def test_key_label_past_its_column_is_refused_and_stores_nothing(client, database_url, monkeypatch) -> None:
    monkeypatch.setenv("DAO_DATABASE_URL", database_url)
    runner = CliRunner()
    long = runner.invoke(main, ["keys", "create", "--role", "operator", "--label", "l" * 201])
    assert long.exit_code == 2 and "--label" in long.output and "200" in long.output, long.output
    assert "operator" not in runner.invoke(main, ["keys", "list"]).output
    fits = runner.invoke(main, ["keys", "create", "--role", "operator", "--label", "l" * 200])
    assert fits.exit_code == 0, fits.output
