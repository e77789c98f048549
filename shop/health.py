"""GET /healthz for the proxy and monitoring: is this process able to reach what it needs?

Each check has a short timeout, so a dead database or Redis makes the answer a fast 503 instead
of a hung request that ties up a proxy connection.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from shop.errors import ServiceUnavailable, is_outage
from shop.extensions import db, socketio

log = logging.getLogger(__name__)

health_bp = Blueprint("health", __name__)
blueprints = [health_bp]

CHECK_TIMEOUT_SECONDS = 2
STALE_AFTER_INTERVALS = 3  # a loop that missed this many passes (and at least 30 s) is stale
_LOOPS = "farmlive.loops"


@health_bp.get("/healthz")
def healthz():
    """200 {"status": "ok"} when the database (and Redis, when configured) answer; else 503."""
    database = _check_database()
    checks = {"database": database.result}
    if current_app.config.get("REDIS_URL"):
        checks["redis"] = _check_redis()
    checks.update(_check_loops(current_app))
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    notes = database.notes
    if notes:
        body["notes"] = notes  # worth a look, but this process can serve
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_database() -> _DatabaseCheck:
    """`SELECT 1` on a pooled connection, then the notes (which read the database too),
    answered within CHECK_TIMEOUT_SECONDS whatever the database does.

    A statement timeout is not enough: against a database that went silent, the pool's
    pre-ping waits on a socket nobody answers and the server never sees the statement. So the
    check runs beside the request (a thread, or a greenlet under gevent) and the request waits
    for it at most CHECK_TIMEOUT_SECONDS. While a check is stuck, later requests wait on that
    same check instead of starting another, so stuck checks never pile up.
    """
    app = current_app._get_current_object()
    with _DB_CHECK_LOCK:
        check = app.extensions.get(_DB_CHECK)
        if check is None or check.done.is_set():
            check = _DatabaseCheck()
            app.extensions[_DB_CHECK] = check
            socketio.start_background_task(check.run, app)
    if not check.done.wait(CHECK_TIMEOUT_SECONDS):
        app.logger.warning("health: database check got no answer in %s s", CHECK_TIMEOUT_SECONDS)
        return _DatabaseCheck(result="error: timeout")
    return check


_DB_CHECK = "farmlive.health_database_check"
_DB_CHECK_LOCK = threading.Lock()


class _DatabaseCheck:
    """One run of the database check; `done` is set when it has a result."""

    def __init__(self, result: str = "error: not run") -> None:
        self.done = threading.Event()
        self.result = result
        self.notes: dict = {}

    def run(self, app: Flask) -> None:
        try:
            with app.app_context():
                with db.engine.connect() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(
                            f"SET LOCAL statement_timeout = {CHECK_TIMEOUT_SECONDS}000"
                        )
                    conn.execute(text("SELECT 1"))
                    conn.rollback()
                self.result = "ok"
                self.notes = _notes(app)
        except Exception as err:  # any failure means "not healthy"; the reason goes to the caller
            app.logger.warning("health: database check failed: %s", err)
            self.result = f"error: {type(err).__name__}"
        finally:
            self.done.set()


def add_note(app: Flask, name: str, read) -> None:
    """Show `read()` under `notes` in /healthz: something an operator should see that does not
    make this process unable to serve (unapplied webhook claims, say)."""
    app.extensions.setdefault("farmlive.health_notes", {})[name] = read


def _notes(app: Flask) -> dict:
    notes = {}
    for name, read in app.extensions.get("farmlive.health_notes", {}).items():
        try:
            value = read()
        except Exception as err:  # a note never fails the health check
            value = f"error: {type(err).__name__}"
        if value:  # nothing to report (0, empty) stays out of the answer
            notes[name] = value
    return notes


def expect_loop(
    app: Flask, name: str, interval: float, *, stale_after: float | None = None
) -> None:
    """Announce a background loop that passes every `interval` seconds in this process; from
    now on /healthz is unhealthy while its last successful pass is stale: older than
    `stale_after` seconds when given (the Socket.IO listener's few seconds), else than
    STALE_AFTER_INTERVALS intervals and at least 30 s."""
    app.extensions.setdefault(_LOOPS, {})[name] = {
        "interval": interval,
        "stale_after": stale_after,
        "last": time.monotonic(),
    }


def loop_passed(app: Flask, name: str) -> None:
    """A background loop finished a pass successfully."""
    loop = app.extensions.get(_LOOPS, {}).get(name)
    if loop is not None:
        loop["last"] = time.monotonic()


def _check_loops(app: Flask) -> dict[str, str]:
    """'ok' per expected loop, or how long ago it last succeeded when that is too long."""
    now, checks = time.monotonic(), {}
    for name, loop in app.extensions.get(_LOOPS, {}).items():
        age = now - loop["last"]
        allowed = loop.get("stale_after") or max(STALE_AFTER_INTERVALS * loop["interval"], 30.0)
        checks[name] = "ok" if age <= allowed else f"stale: last pass {age:.0f} s ago"
    return checks


def _check_redis() -> str:
    try:
        _redis_client(current_app).ping()
        return "ok"
    except Exception as err:
        current_app.logger.warning("health: redis check failed: %s", err)
        return f"error: {type(err).__name__}"


def _redis_client(app: Flask):
    """One client per app with short socket timeouts; it reconnects by itself after an outage."""
    client = app.extensions.get("farmlive_health_redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
        )
        app.extensions["farmlive_health_redis"] = client
    return client


def init_app(app: Flask) -> None:
    """Socket events get the same outage answer as HTTP: an `{error}` ack, not a silent drop."""
    if socketio.default_exception_handler is None:
        socketio.on_error_default(_socket_error)


def _socket_error(err: Exception) -> dict[str, Any]:
    """Default Socket.IO error handler: 'unavailable' while a dependency is down, else logged."""
    try:
        db.session.rollback()
        db.session.remove()
    except Exception:  # the session may be unusable during an outage; nothing else to release
        pass
    if is_outage(err):
        log.warning("socket event while a dependency is unavailable: %s", err)
        return {"error": {"code": ServiceUnavailable.code, "message": ServiceUnavailable.message}}
    log.exception("unhandled error in a socket event", exc_info=err)
    return {"error": {"code": "server_error", "message": "Something went wrong on our side."}}
