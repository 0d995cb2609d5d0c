"""Service basics: health, deployment settings, the OpenAPI document, error format."""

from __future__ import annotations


def test_health_reports_database(client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] == "ok"


def test_dao_settings_are_public(client, runtime) -> None:
    body = client.get("/v1/dao").json()
    assert body["name"] == runtime.settings.dao_name
    assert body["buckets"] == ["compute", "development", "treasury", "buybacks", "community"]
    assert body["rules"]["TreasurySpend"] == {"quorum_bps": 1500, "approval_bps": 6000}
    assert body["proposal_threshold"] == str(10**18)


def test_schema_documents_operations(client) -> None:
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert "/health" in doc["paths"]
    assert "/v1/dao" in doc["paths"]


def test_unknown_route_is_json_404(client) -> None:
    r = client.get("/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
