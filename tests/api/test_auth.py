"""API keys: one declaration per operation (its OpenAPI security), one check, one typed caller."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import post
from litestar.di import NamedDependency
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import TestClient

from governance.app import create_app
from governance.db import session_scope
from governance.http import api_key, public
from governance.keys import Caller, create_key, revoke_key
from tests.support import Wallet


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@post("/test/executor", security=api_key("executor"), sync_to_thread=False, status_code=200)
def executor_only(caller: NamedDependency[Caller]) -> dict[str, Any]:
    return msgspec.structs.asdict(caller)


@post("/test/guardian-or-anyone", security=api_key("guardian", optional=True), sync_to_thread=False,
      status_code=200)
def guardian_or_anyone(caller: NamedDependency[Caller | None]) -> dict[str, Any]:
    return {"caller": msgspec.structs.asdict(caller) if caller else None}


@pytest.fixture
def probe(runtime):
    with TestClient(app=create_app(runtime=runtime, extra_routes=[executor_only, guardian_or_anyone])) as tc:
        yield tc


def test_the_caller_is_the_key_that_authenticated(probe, runtime) -> None:
    with session_scope(runtime.engine) as s:
        made = create_key(s, "executor", label="payments robot", now=runtime.clock.now())
    r = probe.post("/test/executor", headers=bearer(made.key))
    assert r.status_code == 200, r.text
    assert r.json() == {"key_id": made.id, "role": "executor", "prefix": made.prefix, "label": "payments robot"}
    assert made.key.startswith(made.prefix) and made.key != made.prefix  # never the secret itself


def test_an_optional_key_is_checked_when_sent(probe, runtime) -> None:
    with session_scope(runtime.engine) as s:
        guardian = create_key(s, "guardian", now=runtime.clock.now())
        operator = create_key(s, "operator", now=runtime.clock.now())
    assert probe.post("/test/guardian-or-anyone").json() == {"caller": None}
    assert probe.post("/test/guardian-or-anyone", headers={"Authorization": ""}).json() == {"caller": None}
    r = probe.post("/test/guardian-or-anyone", headers=bearer(guardian.key))
    assert r.status_code == 200 and r.json()["caller"]["key_id"] == guardian.id
    for headers, status, code in ((bearer("dao_gd_forged"), 401, "invalid_api_key"),
                                  ({"Authorization": "Basic Z3Vlc3Q="}, 401, "missing_api_key"),
                                  (bearer(operator.key), 403, "wrong_role")):
        r = probe.post("/test/guardian-or-anyone", headers=headers)
        assert (r.status_code, r.json()["error"]) == (status, code), r.text
        assert set(r.json()) == {"error", "detail"}



def test_the_key_is_checked_before_the_body(gov, runtime, guardian_key) -> None:
    """A caller without a valid key learns nothing about the body: 401 whatever it sent."""
    wrong_type = {"buyer": Wallet.evm().address, "payment": "100000", "reference": "p1"}  # 400 with a key
    r = gov.client.post("/v1/treasury/purchases", json=wrong_type)
    assert (r.status_code, r.json()["error"]) == (401, "missing_api_key"), r.text
    r = gov.client.post("/v1/treasury/purchases", content=b"x" * (runtime.settings.max_body_bytes + 1),
                        headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (401, "missing_api_key"), r.text
    # the optional guardian key of a cancel likewise: checked before its (malformed) envelope
    holder = Wallet.evm()
    gov.buy(holder, 100)
    pid = gov.proposal(holder)
    with session_scope(runtime.engine) as s:
        revoked = create_key(s, "guardian", now=runtime.clock.now())
        revoke_key(s, revoked.id, now=runtime.clock.now())
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", json={"type": "Cancel"}, headers=bearer(revoked.key))
    assert (r.status_code, r.json()["error"]) == (401, "revoked_api_key"), r.text
    assert gov.get(pid)["state"] != "canceled"


# Every operation that takes a key, as the document declares it: the role, and whether the key
# is optional (a cancel may instead be signed).
PROTECTED = {
    ("post", "/v1/treasury/purchases"): ("operator", False),
    ("post", "/v1/treasury/buybacks"): ("operator", False),
    ("post", "/v1/treasury/deposits"): ("operator", False),
    ("post", "/v1/power/holder-lists"): ("operator", False),
    ("post", "/v1/executions/{execution_id}/claim"): ("executor", False),
    ("post", "/v1/executions/{execution_id}/complete"): ("executor", False),
    ("post", "/v1/executions/{execution_id}/fail"): ("executor", False),
    ("post", "/v1/proposals/{proposal_id}/cancel"): ("guardian", True),
}


def test_the_document_declares_the_keys_the_service_checks(client) -> None:
    doc = client.get("/schema/openapi.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"operator", "executor", "guardian"}
    declared = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op["security"] != [{}]:  # every operation declares its security; [{}] is public(): no key
                roles = [role for requirement in op["security"] for role in requirement]
                declared[(method, path)] = (roles[0], {} in op["security"])
                assert 401 in map(int, op["responses"]) and 403 in map(int, op["responses"]), (method, path)
    assert declared == PROTECTED
    # and each required one is refused without a key, before anything else is looked at
    for (method, path), (_role, optional) in PROTECTED.items():
        if optional:
            continue
        url = path.replace("{execution_id}", "1")
        r = client.request(method.upper(), url, content=b"{", headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (401, "missing_api_key"), (path, r.text)


@post("/test/both-roles", security=[{"operator": [], "executor": []}], sync_to_thread=False)
def both_roles() -> None:
    return None


@post("/test/undeclared", sync_to_thread=False)
def undeclared(caller: NamedDependency[Caller]) -> None:
    return None


@post("/test/public-caller", security=public(), sync_to_thread=False)
def public_caller(caller: NamedDependency[Caller]) -> None:
    return None


@pytest.mark.parametrize("route", [both_roles, undeclared, public_caller],
                         ids=["two-roles-at-once", "caller-without-security", "caller-of-a-public-operation"])
def test_a_key_the_service_cannot_check_stops_the_app(runtime, route) -> None:
    with pytest.raises(ImproperlyConfiguredException):
        create_app(runtime=runtime, extra_routes=[route])


def test_a_wrong_role_is_named_in_plain_words(probe, runtime) -> None:
    with session_scope(runtime.engine) as s:
        operator = create_key(s, "operator", now=runtime.clock.now())
    r = probe.post("/test/executor", headers=bearer(operator.key))
    assert r.status_code == 403 and r.json()["detail"] == "this operation needs an executor key, not an operator key"
    r = probe.post("/test/guardian-or-anyone", headers=bearer(operator.key))
    assert r.status_code == 403 and r.json()["detail"] == "this operation needs a guardian key, not an operator key"
