"""PostgreSQL that goes silent or slow: every wait is bounded (issue: "no timeouts on database
sockets"; /healthz took 5–11 s against its documented 2 s).

A silent network cannot be played through a user-space proxy at the TCP level (the proxy's
kernel still acknowledges every byte, so keepalives and tcp_user_timeout never fire through
it), so the TCP settings are checked on the connections themselves, and the proxy plays the
silence for /healthz, whose own deadline does not depend on TCP.
"""

from __future__ import annotations

import socket

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shop.errors import is_outage

pytestmark = pytest.mark.only_db("postgresql")

TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)  # Linux's number


def test_every_pooled_connection_drops_a_silent_peer_and_bounds_statements(app, db) -> None:
    raw = db.engine.raw_connection()
    try:
        pgconn = raw.driver_connection.pgconn
        sock = socket.socket(fileno=__import__("os").dup(pgconn.socket))
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 10_000
        finally:
            sock.close()
        cursor = raw.cursor()
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "30s"
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone()[0] == "1min"
    finally:
        raw.close()


def test_a_statement_that_outruns_its_timeout_is_an_outage_not_a_bug(app, db) -> None:
    """503 with Retry-After ("the database is too slow right now"), not a 500 to fix."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL statement_timeout = 50")
        with pytest.raises(OperationalError) as caught:
            conn.execute(text("SELECT pg_sleep(2)"))
    assert is_outage(caught.value)


def test_migrations_run_without_the_request_statement_timeout(app, db) -> None:
    """A long migration is not cancelled after DB_STATEMENT_TIMEOUT_SECONDS."""
    from pathlib import Path

    env = (Path(__file__).parents[2] / "migrations" / "env.py").read_text()
    assert "SET LOCAL statement_timeout = 0" in env


@pytest.mark.slow
def test_healthz_answers_within_its_deadline_while_the_database_is_silent(
    gunicorn, tcp_proxy, database_url
) -> None:
    proxy, proxied_url = tcp_proxy(database_url)
    server = gunicorn(DATABASE_URL=proxied_url)
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200

    proxy.blackhole()  # connections stay open, nothing comes back
    try:
        for _ in range(3):  # the first finds the stuck check, the next ones wait on the same one
            # A 2 s deadline: 6 s is only the hang detector (the old code waited for TCP).
            answer = requests.get(server.url + "/healthz", timeout=6)
            assert answer.status_code == 503
            assert answer.json()["checks"]["database"] == "error: timeout"
    finally:
        proxy.restore()

    for _ in range(40):
        answer = requests.get(server.url + "/healthz", timeout=10)
        if answer.status_code == 200:
            break
    assert answer.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert server.proc.poll() is None
