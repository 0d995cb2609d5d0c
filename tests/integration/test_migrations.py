"""The schema comes only from the migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from governance.db import create_engine
from governance.metadata import import_all_models


def test_upgrade_head_on_empty_database_matches_models(database_url: str) -> None:
    # database_url is a fresh database migrated to head by the fixtures (SQLite and PostgreSQL)
    import_all_models()
    engine = create_engine(database_url, pool=False)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_every_model_table_is_created_by_migrations(database_url: str) -> None:
    from sqlalchemy import inspect

    import_all_models()
    engine = create_engine(database_url, pool=False)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables
