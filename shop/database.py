"""Transaction helpers shared by every service."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import DateTime, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from shop.extensions import db

log = logging.getLogger(__name__)


def begin_write() -> None:
    """Start a service's write transaction, or go on in the one the caller already began.

    On SQLite, any read transaction the request opened (loading the user, say) is ended first,
    so the write starts with BEGIN IMMEDIATE and queues on the busy timeout instead of failing
    with "database is locked" when it tries to upgrade a stale read snapshot. PostgreSQL (READ
    COMMITTED, row locks) simply goes on in the open transaction: no reloads, no extra trip.
    """
    session = db.session()
    if session.in_transaction():
        if session.get_bind().dialect.name != "sqlite" or session.info.get(_WRITING):
            return
        session.commit()
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    session.info[_WRITING] = True


_WRITING = "farmlive.writing"


@event.listens_for(Session, "after_transaction_end")
def _write_ended(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITING, None)


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session has loaded.

    What the caller sends right after the commit (the news to a room, the answer) is then what
    this transaction read and wrote, built without reading it all back: on a busy process each
    read-back is a round trip that waits for this greenlet's next turn on the CPU. Use it only
    where nothing after the commit needs newer values than the transaction saw.
    """
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def commit_with(*steps: tuple[Executable, dict[str, Any]]) -> None:
    """Run these (statement, parameters) steps as the transaction's last ones, then commit.

    On PostgreSQL the steps and the COMMIT leave in one pipeline, one round trip: a row lock
    they take (a hot variant's stock in a flash sale) is released as soon as the database has
    committed, instead of after this greenlet's next turn on a busy CPU. A failing step aborts
    the pipeline, so nothing is committed, and raises as SQLAlchemy would. A step must not
    return rows (an INSERT is `.inline()`: no RETURNING of its new id), since its result only
    exists once the pipeline is over.
    """
    session = db.session()
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for statement, parameters in steps:
            session.execute(statement, parameters)
        session.commit()
        return
    session.flush()
    driver = connection.connection.driver_connection
    try:
        with driver.pipeline():
            for statement, parameters in steps:
                session.execute(statement, parameters)
            driver.commit()
    except psycopg.Error as err:
        if driver.broken:
            connection.invalidate(err)
        session.rollback()
        raise exc.DBAPIError.instance(
            "; ".join(str(statement) for statement, _ in steps),
            [parameters for _, parameters in steps],
            err,
            psycopg.Error,
            dialect=connection.dialect,
        ) from err
    session.commit()  # SQLAlchemy's bookkeeping; the connection is already idle


@event.listens_for(Session, "do_orm_execute")
def _locked_reads_refresh(state) -> None:
    """Every ORM read that locks rows (SELECT ... FOR UPDATE / FOR SHARE) refreshes them.

    Without this, an object the session loaded earlier keeps its old attribute values even
    though the locked read returned the committed ones, and a compare-and-set compares stale
    state (twelve simultaneous cancels each saw "unpaid" and restocked). With it, whoever
    waited for a lock always decides on what the previous holder committed.
    """
    if state.is_select and getattr(state.statement, "_for_update_arg", None) is not None:
        state.update_execution_options(populate_existing=True)


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


def release_connection() -> None:
    """End the request's read-only transaction now and hand its connection back to the pool,
    keeping every object it loaded readable (they are detached: what was not loaded cannot be
    loaded any more).

    A page that has read what it shows then renders its template without holding a pooled
    connection. Under a crowd the render waits its turn for the CPU, and a connection held
    meanwhile is one that checkout waits for (1,200 viewers opening the live page at once
    exhausted the pool this way).
    """
    session = db.session()
    session.expunge_all()
    session.rollback()


def warm_pool(app: Flask) -> int:
    """Open the PostgreSQL pool's connections now, before the first request needs them.

    Opening a connection costs milliseconds of CPU; a flash crowd arriving at a cold process
    would otherwise pay for all of them at the worst moment. Returns how many were opened; a
    database that is down is not an error here (requests answer 503 until it is back).
    """
    from shop import budgets

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return 0
        opened = 0
        for name, engine in {"requests": db.engine, **budgets.engines(app)}.items():
            connections = []
            try:
                for _ in range(engine.pool.size()):
                    connections.append(engine.connect())
            except exc.DBAPIError:
                log.warning("database unreachable at start; the pool fills on demand")
            finally:
                for connection in connections:
                    connection.close()
            log.info("database pool filled (%s): %d connections", name, len(connections))
            opened += len(connections)
        return opened
