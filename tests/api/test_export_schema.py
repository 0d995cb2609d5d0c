"""The export is a typed document: the OpenAPI document declares every field a verifier reads,
so a client generated from it gets the ballots, weights and result as types, not a bare object,
and the body served is exactly what the schema says."""

from __future__ import annotations

from tests.support import Wallet


def test_the_export_is_declared_field_by_field_and_served_as_declared(gov, client) -> None:
    a = Wallet.evm()
    gov.buy(a, 10)
    pid = gov.proposal(a, "PriceChange", price=110_000)
    gov.advance(gov.runtime.settings.voting_delay)
    assert gov.vote(a, pid, 1).status_code == 201
    doc = client.get("/schema/openapi.json").json()
    ok = doc["paths"]["/v1/proposals/{proposal_id}/export"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schemas = doc["components"]["schemas"]
    export = schemas[ref]
    assert set(export["required"]) == {"format", "domain", "types", "proposal", "snapshot", "ballots", "result"}

    def fields(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    body = client.get(f"/v1/proposals/{pid}/export").json()
    assert set(body) == set(export["properties"])
    assert set(body["proposal"]) == fields("ExportProposal")
    assert set(body["snapshot"]) == fields("ExportSnapshot")
    assert [set(b) for b in body["ballots"]] == [fields("ExportBallot")]
    assert set(body["ballots"][0]["envelope"]) == fields("SignedEnvelope")
    assert body["result"] is None  # not tallied yet
    assert fields("ExportResult") >= {"outcome", "for", "against", "abstain", "merkle_root", "ledger_head"}
