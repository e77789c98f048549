"""Transaction helpers shared by every service."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from shop.extensions import db


def begin_write() -> None:
    """Start a service's write transaction.

    On SQLite, any read transaction the request opened (loading the user, say) is ended first,
    so the write starts with BEGIN IMMEDIATE and queues on the busy timeout instead of failing
    with "database is locked" when it tries to upgrade a stale read snapshot. PostgreSQL (READ
    COMMITTED, row locks) simply goes on in the open transaction: no reloads, no extra trip.
    """
    session = db.session()
    if session.in_transaction():
        if session.get_bind().dialect.name != "sqlite":
            return
        session.commit()
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn) -> None:
    """Reads begin DEFERRED; `begin_write` asks for IMMEDIATE so writers take the lock first."""
    if conn.dialect.name == "sqlite":
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class UTCDateTime(TypeDecorator):
    """A timestamp that always comes back timezone-aware in UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value
