"""Every route the application serves is an operation of the served OpenAPI document, the API's
reference (docs/api.md): a handler left out of the schema would be an endpoint no client
generated from the document knows about. Only the document's own routes (``/schema…``) and the
CORS preflight (``OPTIONS``, answered by the framework on every path) are served outside it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite"])
def database_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """The document does not depend on the database: SQLite only (the id stays ``[sqlite]``)."""
    path = tmp_path / "dao.db"
    shutil.copyfile(sqlite_template, path)
    yield f"sqlite:///{path}"


def served(app) -> set[tuple[str, str]]:
    """(method, path) of every operation the app routes, paths as OpenAPI writes them."""
    out = set()
    for route in app.routes:
        if route.path_format == "/schema" or route.path_format.startswith("/schema/"):
            continue
        for handler in route.route_handlers:
            out |= {(m.lower(), route.path_format) for m in handler.http_methods if m != "OPTIONS"}
    return out


def documented(document: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")}


def test_every_served_route_is_in_the_openapi_document(client) -> None:
    document = client.get("/schema/openapi.json").json()
    routes = served(client.app)
    assert len(routes) >= 22
    assert routes - documented(document) == set(), "served but not in /schema/openapi.json"
    assert documented(document) - routes == set(), "in /schema/openapi.json but not served"


def test_a_route_left_out_of_the_schema_is_caught(runtime) -> None:
    from litestar import get
    from litestar.testing import TestClient

    from governance.app import create_app
    from governance.http import public

    @get("/v1/hidden", include_in_schema=False, security=public(), sync_to_thread=False)
    def hidden() -> dict:
        return {}

    with TestClient(app=create_app(runtime=runtime, extra_routes=[hidden])) as tc:
        assert ("get", "/v1/hidden") in served(tc.app) - documented(tc.get("/schema/openapi.json").json())
