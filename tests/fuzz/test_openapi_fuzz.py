"""Property-based fuzzing of every operation against the service's own OpenAPI document.

Schemathesis takes the document the app serves at ``/schema/openapi.json`` and, for each
operation, sends the schema's examples, its coverage cases (boundaries, missing and
wrong-typed fields, negative values) and a bounded number of generated requests, valid and
invalid, straight to the ASGI app (no server, no network). Every response must:

- never be a 5xx;
- carry a status code the operation documents, with the documented content type;
- have a body that validates against the schema documented for that status.

A failure is a bug in the app or a schema that lies: fix the one that is wrong, never the check.

The document is loaded at import, so pytest collects one test per operation and auth mode
(``test_operation[GET /v1/treasury/ledger][keys]``; pick some with ``-k "ledger and fuzzer"``).
It is taken from an app that never opens its database (the document does not depend on one),
and a test checks it equals what the seeded app serves. (``schemathesis.pytest.from_fixture``
would load it from a fixture instead, but on pytest 9.2 it fails with ``'Function' object has
no attribute '_nodeid'``: it renames the running test through a pytest attribute that is gone.)

The deployment is one SQLite file per module, seeded over HTTP with holders, an active proposal
with votes, an executed and a queued proposal, and an external execution waiting for an executor,
and generated path parameters are mixed with those ids so GET-by-id reaches real records.
Each operation runs twice: with the real operator/executor/guardian key its security scheme
names, and with whatever the fuzzer sends (no key or a made-up one). The last test checks both
runs reached every operation of the document.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.serialization import encode_json
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.clock import SettableClock
from governance.runtime import Runtime
from governance.settings import load_settings
from tests.support import START, TOKEN, Gov, Wallet, make_key

# Generated requests per operation (on top of its examples and coverage cases).
MAX_EXAMPLES = 40
SEED = 20270115  # fixed: CI replays exactly the same requests

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

SETTINGS = {"chain_id": 31337, "rate_limit_per_minute": 0, "voting_delay": 0, "voting_period": 600,
            "timelock": 300, "grace_period": 600, "retry_interval": 60, "proposal_threshold": TOKEN,
            "external_buckets": ("development",), "execution_lease_seconds": 120}

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,  # nothing carried over between runs: CI and a laptop send the same requests
    deadline=None,  # a request is a database transaction; its time is not the property under test
    # Every operation shares one seeded database; the fixtures are module-scoped on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _document() -> dict[str, Any]:
    """``/schema/openapi.json`` as the app serves it, read without a request: no lifespan, no database."""
    app = create_app(load_settings(env={}, database_url="sqlite://", **SETTINGS), clock=SettableClock(START))
    try:
        return json.loads(encode_json(app.openapi_schema.to_schema()))
    finally:
        app.state.runtime.engine.dispose()


DOCUMENT = _document()
OPERATION_IDS = {op["operationId"] for item in DOCUMENT["paths"].values()
                 for method, op in item.items() if method in HTTP_METHODS}

schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=schemathesis.Config.from_dict({"seed": SEED}))

# Ids that exist once the `seed` fixture ran; the hooks below read them while generating.
KNOWN: dict[str, list[Any]] = {"proposal_id": [], "execution_id": [], "address": []}
# Cases sent, per auth mode and operation id: the last test accounts for them.
SENT: defaultdict[str, Counter[str]] = defaultdict(Counter)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy:
    """Half the generated ids are replaced by ids that exist, so lookups find something."""
    name = next((n for n in KNOWN if n in (path_parameters or {})), None)
    if name is None or not KNOWN[name]:
        return st.just(path_parameters)
    real = st.sampled_from(KNOWN[name]).map(lambda v: {**path_parameters, name: v})
    return st.one_of(st.just(path_parameters), real)


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy:
    if not query or "proposal" not in query or not KNOWN["proposal_id"]:
        return st.just(query)
    return st.one_of(st.just(query), st.sampled_from(KNOWN["proposal_id"]).map(lambda p: {**query, "proposal": p}))


@dataclass
class Seed:
    app: Litestar
    keys: dict[str, str]


@pytest.fixture(scope="module")
def fuzz_runtime(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Built like conftest's ``runtime``, once for the module: every operation shares it."""
    from governance.setup import create_deployment

    path = tmp_path_factory.mktemp("fuzz") / "dao.db"
    shutil.copyfile(sqlite_template, path)
    rt = bootstrap(load_settings(env={}, database_url=f"sqlite:///{path}", **SETTINGS),
                               clock=SettableClock(START))
    create_deployment(rt)
    yield rt
    # Schemathesis keeps the app's lifespan running until the process exits; the vote writer
    # thread and the connections go now, with the database file.
    rt.close()


@pytest.fixture(scope="module")
def seed(fuzz_runtime: Runtime) -> Seed:
    """Holders, proposals in several states, votes and an external execution, made over HTTP."""
    rt = fuzz_runtime
    keys = {role: make_key(rt, role) for role in ("operator", "executor", "guardian")}
    a, b = Wallet.evm(), Wallet.solana()
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, keys["operator"])
        gov.buy(a, 100)
        gov.buy(b, 40)
        # passed and executed (price) / passed and waiting for an external executor (spend)
        price = gov.proposal(a, "PriceChange", price=110_000)
        spend = gov.proposal(a, "TreasurySpend", bucket="development", asset="USD", recipient=b.address,
                             amount=10_000)
        for pid in (price, spend):
            assert gov.vote(a, pid, 1).status_code == 201
        gov.advance(600)
        gov.tick()
        gov.advance(300)
        gov.tick()
        assert gov.get(price)["state"] == "executed"
        assert gov.get(spend)["execution"]["status"] == "ready"
        # open for voting, with ballots from both schemes and a changed vote
        active = gov.proposal(b, "AllocationChange")
        assert gov.vote(a, active, 1, reason="more for development").status_code == 201
        assert gov.vote(b, active, 0).status_code == 201
        gov.advance(1)
        assert gov.vote(b, active, 2, reason="on reflection").status_code == 201
        executions = client.get("/v1/executions").json()["items"]
    KNOWN["proposal_id"][:] = [price, spend, active]
    KNOWN["execution_id"][:] = [e["id"] for e in executions]
    KNOWN["address"][:] = [a.address, b.address]
    return Seed(app=create_app(runtime=rt), keys=keys)


def _roles(case: schemathesis.Case) -> list[str]:
    return [role for requirement in case.operation.definition.raw.get("security", []) for role in requirement]


def test_fuzzed_document_is_the_served_one(seed: Seed) -> None:
    """The document generated from is the one the seeded deployment serves."""
    response = TestClient(app=seed.app).get("/schema/openapi.json")  # no lifespan: one plain request
    assert response.status_code == 200
    assert response.json() == DOCUMENT


# Each operation runs twice: with the key of the role its security scheme names ("keys"), and
# with whatever Authorization the fuzzer makes up, usually none ("fuzzer": 401, never a 5xx).
AUTH_MODES = ("keys", "fuzzer")


@schema.parametrize()
@pytest.mark.parametrize("auth", AUTH_MODES)
@FUZZ_SETTINGS
def test_operation(case: schemathesis.Case, auth: str, seed: Seed) -> None:
    """No 5xx, and a status code, content type and body the document declares for this operation."""
    SENT[auth][case.operation.definition.raw["operationId"]] += 1
    roles = _roles(case) if auth == "keys" else []
    headers = {"Authorization": f"Bearer {seed.keys[roles[0]]}"} if roles else None
    case.call_and_validate(app=seed.app, headers=headers, checks=CHECKS)


def test_every_operation_was_fuzzed() -> None:
    """Both runs sent requests to every operation the document declares (tests/fuzz/conftest.py
    runs this test last, whatever the order of the others)."""
    assert len(OPERATION_IDS) == sum(1 for item in DOCUMENT["paths"].values() for m in item if m in HTTP_METHODS), \
        "operation ids must be unique"
    for auth in AUTH_MODES:
        missing = sorted(OPERATION_IDS - set(SENT[auth]))
        assert not missing, (f"{auth}: {len(missing)} of {len(OPERATION_IDS)} operations never fuzzed "
                             f"(this test accounts for the whole module): {missing}")
