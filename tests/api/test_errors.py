"""Every failure is one of the service's error types, rendered by one mapping; a database
without a deployment stops a process at start instead of failing its requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar import get
from litestar.exceptions import InternalServerException
from litestar.testing import TestClient

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.cli import main
from governance.errors import NotInitialised, RateLimited
from governance.ratelimit import RateLimitMiddleware, TokenBuckets
from governance.settings import load_settings
from tests.support import Gov, Wallet

# --- 429, 413, 405, 500: the service's error types, one rendering -------------------------------


def test_the_rate_limiter_raises_the_service_error_type() -> None:
    async def app(scope, receive, send) -> None:
        raise AssertionError("a limited request reaches no handler")

    limiter = RateLimitMiddleware(app, TokenBuckets(per_minute=60, burst=1, now=lambda: 0.0))
    limiter.buckets.take("203.0.113.9")  # the burst is spent
    with pytest.raises(RateLimited) as raised:
        asyncio.run(limiter({"type": "http", "path": "/v1/dao", "client": ("203.0.113.9", 1)}, None, None))
    assert raised.value.status_code == 429 and raised.value.headers == {"Retry-After": "1"}
    assert raised.value.body() == {"error": "rate_limited", "detail": "too many requests from 203.0.113.9; "
                                                                    "retry in 1 s"}


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_minute": 60, "rate_limit_burst": 1}])
def test_429_is_rendered_like_every_error(client) -> None:
    assert client.get("/v1/dao").status_code == 200
    r = client.get("/v1/dao")
    assert r.status_code == 429
    assert r.json() == {"error": "rate_limited", "detail": "too many requests from testclient; retry in 1 s"}
    assert r.headers["retry-after"] == "1" and r.headers["content-type"] == "application/json"


def test_413_405_and_404_are_the_service_error_types(client, runtime) -> None:
    big = client.post("/v1/votes", content=b"{" * (runtime.settings.max_body_bytes + 1),
                      headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    assert big.json() == {"error": "payload_too_large", "detail": "the request body is larger than the service accepts"}
    wrong_method = client.delete("/v1/dao")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    assert set(wrong_method.json()) == {"error", "detail"} and "GET" in wrong_method.headers["allow"]
    missing = client.get("/v1/nope")
    assert missing.status_code == 404 and missing.json() == {"error": "not_found", "detail": "no such resource"}


@get("/test/framework-failure", sync_to_thread=False)
def framework_failure() -> None:
    raise InternalServerException("connection pool state: 3 of 5 in use, dsn=postgres://secret@db")


def test_a_framework_failure_is_an_internal_error_and_shows_no_internals(runtime) -> None:
    with TestClient(app=create_app(runtime=runtime, extra_routes=[framework_failure])) as tc:
        r = tc.get("/test/framework-failure")
    assert r.status_code == 500
    assert r.json() == {"error": "internal_error", "detail": "the service failed; nothing was stored"}


# --- the 409 superseded body: its vote field is documented ---------------------------------------

@pytest.mark.parametrize("settings_overrides", [{"voting_delay": 0}])
def test_superseded_names_the_vote_that_counts_as_the_document_says(client, runtime, operator_key) -> None:
    gov, holder = Gov(client, runtime, operator_key), Wallet.evm()
    gov.buy(holder, 10)
    pid = gov.proposal(holder)
    gov.advance(1)
    newer = gov.vote(holder, pid, 1)
    assert newer.status_code == 201
    older = gov.vote(holder, pid, 0, timestamp=gov.now - 10)
    assert older.status_code == 409 and older.json()["error"] == "superseded"
    assert older.json()["vote"] == newer.json()["id"]
    schema = client.get("/schema/openapi.json").json()["components"]["schemas"]["ErrorBody"]
    assert set(older.json()) <= set(schema["properties"]) and schema["required"] == ["detail", "error"]
    assert schema["properties"]["vote"]["type"] == "string"
    conflict = client.get("/schema/openapi.json").json()["paths"]["/v1/votes"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


# --- no deployment: a start-up refusal naming the database, never a response ---------------------

def test_an_app_on_a_database_without_a_deployment_does_not_start(database_url: str) -> None:
    runtime = bootstrap(load_settings(env={}, database_url=database_url, rate_limit_per_minute=0))
    with pytest.raises(BaseExceptionGroup) as raised, TestClient(app=create_app(runtime=runtime)):
        pass  # Litestar reports a failed start-up hook in an exception group
    (refused,) = raised.value.subgroup(NotInitialised).exceptions
    assert str(refused).endswith("holds no deployment: run `dao init` first")
    assert str(runtime.engine.url.database) in str(refused)
    runtime.close()


COMMANDS = [["scheduler", "--once"], ["ledger", "verify"]]


def refused(command: list[str], url: str, monkeypatch) -> str:
    """The last line of what ``dao COMMAND`` printed, after checking it stopped with exit status 1."""
    monkeypatch.setenv("DAO_DATABASE_URL", url)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_refuse_a_database_without_a_deployment(command: list[str], database_url: str,
                                                         monkeypatch) -> None:
    last = refused(command, database_url, monkeypatch)
    assert last.startswith("Error: the database ") and last.endswith("holds no deployment: run `dao init` first")
    assert database_url.rsplit("/", 1)[1] in last


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_refuse_a_database_never_migrated(command: list[str], tmp_path: Path, monkeypatch) -> None:
    last = refused(command, f"sqlite:///{tmp_path / 'empty.db'}", monkeypatch)
    assert last == f"Error: the database sqlite:///{tmp_path / 'empty.db'} holds no deployment: run `dao init` first"
