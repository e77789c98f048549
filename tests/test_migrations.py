"""`flask db upgrade` on an empty database builds exactly the models' schema (no missing migration).

Run on a fresh SQLite file and on a fresh PostgreSQL database created for the test (and dropped
after), through the real `flask --app wsgi db upgrade` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, ROOT, pg_available, require


def _flask_db_upgrade(url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL=url, SECRET_KEY="test-secret-key", UPLOAD_FOLDER=str(tmp_path / "up"))
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _schema_differences(url: str) -> list:
    from shop.extensions import db

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path):
    """A URL of an empty database of the requested kind, removed afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    require(pg_available(), "PostgreSQL not reachable (set TEST_DATABASE_URL)")
    name = f"farmlive_migrations_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.parametrize("empty_database", ["sqlite", "postgresql"], indirect=True)
def test_upgrade_on_empty_database_matches_models(empty_database: str, tmp_path: Path):
    import shop  # noqa: F401 - the models register on import of the app's packages
    from shop import create_app

    create_app("config.TestConfig", SQLALCHEMY_DATABASE_URI="sqlite://")  # imports every model

    _flask_db_upgrade(empty_database, tmp_path)

    assert _schema_differences(empty_database) == []
