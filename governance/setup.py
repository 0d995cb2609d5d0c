"""Creating a deployment: schema, salt, and each domain's defaults (``dao init``)."""

from __future__ import annotations

import secrets

from governance import domains
from governance.db import session_scope
from governance.migrations import upgrade
from governance.models import Deployment
from governance.runtime import Runtime


def initialise(runtime: Runtime) -> tuple[Deployment, bool]:
    """Migrate the database to head and create the deployment once.

    Idempotent: a second run keeps the existing salt (changing it would invalidate every
    signature ever made for this deployment). Returns the deployment and whether it is new.
    """
    upgrade(runtime.settings.database_url)
    return bootstrap(runtime)


def bootstrap(runtime: Runtime) -> tuple[Deployment, bool]:
    """Create the deployment row and each domain's defaults on a migrated database."""
    with session_scope(runtime.engine) as session:
        row = session.get(Deployment, 1)
        created = row is None
        if row is None:
            row = Deployment(id=1, salt="0x" + secrets.token_hex(32), created_at=runtime.clock.now())
            session.add(row)
            session.flush()
        for init in domains.initialisers():
            init(session, runtime)
    runtime.salt = row.salt
    return row, created
