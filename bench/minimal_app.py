"""The baseline for the checkout figures: a bare Flask endpoint running rawdb's transaction.

No Farmlive code, login, CSRF or session: one POST decrements bench_raw_stock row 1 and inserts
into bench_raw_order through a SQLAlchemy engine (psycopg 3 or sqlite3, pooled like the app),
so `python -m bench.flash_sale` can show what plain Flask + SQLAlchemy on gunicorn+gevent costs
before any of our own code runs. Served as `bench.minimal_app:app`; the database URL comes from
DATABASE_URL, the PostgreSQL pool from DB_POOL_SIZE / DB_MAX_OVERFLOW as for the app.
"""

from __future__ import annotations

import os

from flask import Flask, request
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from bench.rawdb import DECREMENT, INSERT

app = Flask(__name__)


class SoldOut(Exception):
    """The conditional decrement matched no row: roll the transaction back, answer 409."""


def _engine(url: str) -> Engine:
    """The app's pool settings for PostgreSQL; rawdb's pragmas and BEGIN IMMEDIATE for SQLite."""
    if url.startswith("postgresql"):
        return create_engine(
            url,
            pool_size=int(os.environ.get("DB_POOL_SIZE", "10")),
            max_overflow=int(os.environ.get("DB_MAX_OVERFLOW", "20")),
            pool_timeout=5.0,
        )
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours, below
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


engine = _engine(os.environ["DATABASE_URL"])


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/api/v1/checkout")
def checkout():
    """Body {"buyer": n}; the path matches the app's prefix so bench.clients.Browser can call it."""
    body = request.get_json(silent=True)
    buyer = body.get("buyer") if isinstance(body, dict) else None
    if type(buyer) is not int or not 0 <= buyer < 2**31:
        return {"error": "buyer must be a non-negative integer"}, 400
    try:
        with engine.begin() as conn:
            if conn.exec_driver_sql(DECREMENT).rowcount != 1:
                raise SoldOut
            conn.exec_driver_sql(INSERT.format(buyer=buyer))
    except SoldOut:
        return {"error": "sold out"}, 409
    return {"ok": True, "buyer": buyer}, 201
