"""The database's own limit: the minimal correct checkout transaction, straight from the driver.

One transaction = a conditional decrement of ONE hot stock row (the flash-sale shape) plus an
order insert, committed. Run from 8 connections at once, on the benchmark's own database, in
tables of its own so the app's data is untouched.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

CONNECTIONS = 8
STOCK = 100_000_000

_PG_DDL = [
    "DROP TABLE IF EXISTS bench_raw_order",
    "DROP TABLE IF EXISTS bench_raw_stock",
    "CREATE TABLE bench_raw_stock (id integer PRIMARY KEY, stock integer NOT NULL"
    " CHECK (stock >= 0))",
    "CREATE TABLE bench_raw_order (id bigserial PRIMARY KEY, variant_id integer NOT NULL,"
    " buyer_id integer NOT NULL, quantity integer NOT NULL, unit_price integer NOT NULL,"
    " total integer NOT NULL, status varchar(32) NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())",
    f"INSERT INTO bench_raw_stock VALUES (1, {STOCK})",
]
_SQLITE_DDL = [
    "DROP TABLE IF EXISTS bench_raw_order",
    "DROP TABLE IF EXISTS bench_raw_stock",
    "CREATE TABLE bench_raw_stock (id integer PRIMARY KEY, stock integer NOT NULL"
    " CHECK (stock >= 0))",
    "CREATE TABLE bench_raw_order (id integer PRIMARY KEY AUTOINCREMENT, variant_id integer"
    " NOT NULL, buyer_id integer NOT NULL, quantity integer NOT NULL, unit_price integer NOT NULL,"
    " total integer NOT NULL, status varchar(32) NOT NULL,"
    " created_at text NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    f"INSERT INTO bench_raw_stock VALUES (1, {STOCK})",
]
DECREMENT = "UPDATE bench_raw_stock SET stock = stock - 1 WHERE id = 1 AND stock >= 1"
INSERT = (
    "INSERT INTO bench_raw_order (variant_id, buyer_id, quantity, unit_price, total, status)"
    " VALUES (1, {buyer}, 1, 8800, 8800, 'pending_payment')"
)


def raw_db_tps(database_url: str, seconds: float = 5.0, connections: int = CONNECTIONS) -> dict:
    """Orders per second the database itself commits for the flash-sale transaction."""
    if database_url.startswith("postgresql"):
        dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        _pg_setup(dsn)
        worker = _pg_worker(dsn)
    else:
        path = database_url.split("sqlite:///", 1)[1]
        _sqlite_setup(path)
        worker = _sqlite_worker(path)
    return _run(worker, seconds, connections)


def _run(worker: Callable[[int, float, list], None], seconds: float, connections: int) -> dict:
    counts: list[int] = [0] * connections
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=worker, args=(i, deadline, counts, errors), daemon=True)
        for i in range(connections)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    total = sum(counts)
    return {
        "raw_db_tps": round(total / elapsed, 1),
        "raw_db_orders": total,
        "raw_db_connections": connections,
        "raw_db_errors": len(errors),
        "raw_db_error_sample": errors[:3],
    }


def _pg_setup(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _PG_DDL:
            conn.execute(statement)


def _pg_worker(dsn: str):
    import psycopg

    def work(index: int, deadline: float, counts: list[int], errors: list[str]) -> None:
        with psycopg.connect(dsn) as conn:
            while time.monotonic() < deadline:
                try:
                    with conn.transaction():
                        cursor = conn.execute(DECREMENT)
                        if cursor.rowcount != 1:
                            raise RuntimeError("sold out")
                        conn.execute(INSERT.format(buyer=index))
                    counts[index] += 1
                except Exception as err:  # counted and reported, never silently dropped
                    errors.append(repr(err))
                    if len(errors) > 1000:
                        return

    return work


def _sqlite_setup(path: str) -> None:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for statement in _SQLITE_DDL:
        conn.execute(statement)
    conn.close()


def _sqlite_worker(path: str):
    def work(index: int, deadline: float, counts: list[int], errors: list[str]) -> None:
        # The app's own pragmas (shop/database.py): WAL, busy timeout, BEGIN IMMEDIATE writes.
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            while time.monotonic() < deadline:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    if conn.execute(DECREMENT).rowcount != 1:
                        raise RuntimeError("sold out")
                    conn.execute(INSERT.format(buyer=index))
                    conn.execute("COMMIT")
                    counts[index] += 1
                except Exception as err:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    errors.append(repr(err))
                    if len(errors) > 1000:
                        return
        finally:
            conn.close()

    return work
