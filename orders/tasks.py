"""Background work inside the server process: releasing expired stock holds, and delivering
orders shipped more than AUTO_DELIVER_DAYS ago (checked about every five minutes).

Started by `wsgi.py` (`python wsgi.py`) and by gunicorn's `post_worker_init` hook, never by
`create_app`, and only when RUN_BACKGROUND_TASKS is on. Several processes may run it at once:
`expire_due` claims rows with SKIP LOCKED and keeps them until its batch commits, so runners
split the work and each hold is released once. The Stripe intents of expired orders are
cancelled beside the loop, by a few workers (`cancel_intents_later`), never inside a pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from shop.budgets import BACKGROUND, budget
from shop.extensions import db, socketio
from shop.health import expect_loop, loop_passed

log = logging.getLogger(__name__)
AUTO_DELIVER_PERIOD_SECONDS = 300.0
#: Stripe intent cancels of expired orders running at once: a hanging one (up to Stripe's
#: timeouts, and its retries) takes one worker, not the loop.
INTENT_CANCEL_WORKERS = 4


def _one_pass(app: Flask, work: Callable[[], int], what: str) -> int:
    """Run one pass of `work`, never raising: a failed pass is logged and the next one retries.

    Cleaning up after a failure can fail too (a rollback on a connection the database dropped
    raises again): that is logged and swallowed as well, so nothing a pass does ends the loop.
    A pass that succeeded is reported to /healthz (`loop_passed`).
    """
    try:
        with app.app_context(), budget(BACKGROUND):
            try:
                count = work()
            except Exception:
                log.exception("%s pass failed", what)
                _release_session()
                return 0
            _release_session()
            loop_passed(app, what)
            if count:
                log.info("%s pass: %d order(s)", what, count)
            return count
    except Exception:  # the app context itself could not be set up or torn down
        log.exception("%s pass could not run", what)
        return 0


def _release_session() -> None:
    """Roll back and hand the connection back; a broken connection is discarded, not raised."""
    for step in (db.session.rollback, db.session.remove):
        try:
            step()
        except Exception:
            log.warning("releasing the session after a background pass failed", exc_info=True)


def expire_once(app: Flask) -> int:
    """One expiry pass; the expired orders' Stripe intents are left to the workers."""
    from orders.services import expire_due

    def work() -> int:
        return expire_due(cancel_intents=lambda order_ids: cancel_intents_later(app, order_ids))

    return _one_pass(app, work, "expiry")


_cancel_pool: ThreadPoolExecutor | None = None
_cancel_pool_lock = threading.Lock()


def cancel_intents_later(app: Flask, order_ids: list[int]) -> None:
    """Queue these expired orders' intent cancels for the workers and return at once.

    The next pass therefore never waits for Stripe, and one hanging cancel holds up only its
    own worker. Threads suit every async mode: gevent's monkey-patching makes them greenlets.
    """
    global _cancel_pool
    with _cancel_pool_lock:
        if _cancel_pool is None:
            _cancel_pool = ThreadPoolExecutor(
                max_workers=INTENT_CANCEL_WORKERS, thread_name_prefix="intent-cancel"
            )
        pool = _cancel_pool
    for order_id in order_ids:
        pool.submit(_cancel_intent, app, order_id)


def _cancel_intent(app: Flask, order_id: int) -> None:
    """One intent cancel in its own app context (and session), never raising: the order is
    expired already, and `cancel_intent` records at the order how Stripe answered."""
    from orders.payments import cancel_intent

    try:
        with app.app_context(), budget(BACKGROUND):
            try:
                cancel_intent(order_id)
            except Exception:
                log.exception("cancelling the intent of expired order %s failed", order_id)
            finally:
                _release_session()
    except Exception:  # the app context itself could not be set up or torn down
        log.exception("cancelling the intent of expired order %s could not run", order_id)


def auto_deliver_once(app: Flask) -> int:
    from orders.fulfilment.services import auto_deliver_due

    return _one_pass(app, auto_deliver_due, "auto-delivery")


def redrive_once(app: Flask) -> int:
    from orders.webhooks import redrive_unapplied

    return _one_pass(app, redrive_unapplied, "webhook re-drive")


def run_expiry(app: Flask, *, stop: Callable[[], bool] = lambda: False) -> None:
    """Loop until `stop()` (forever in a server), one pass every EXPIRY_INTERVAL_SECONDS
    (socketio.sleep suits every async mode)."""
    interval = float(app.config["EXPIRY_INTERVAL_SECONDS"])
    deliver_every = max(1, round(AUTO_DELIVER_PERIOD_SECONDS / interval))
    passes = 0
    while not stop():
        try:
            expire_once(app)
            redrive_once(app)
            if passes % deliver_every == 0:
                auto_deliver_once(app)
        except Exception:  # belt and braces: _one_pass already never raises
            log.exception("background pass failed")
        passes += 1
        socketio.sleep(interval)


def start_background_tasks(app: Flask) -> bool:
    """Start the expiry loop when this process is meant to run background work."""
    if not app.config.get("RUN_BACKGROUND_TASKS"):
        return False
    interval = float(app.config["EXPIRY_INTERVAL_SECONDS"])
    expect_loop(app, "expiry", interval)
    expect_loop(app, "auto-delivery", max(AUTO_DELIVER_PERIOD_SECONDS, interval))
    socketio.start_background_task(run_expiry, app)
    log.info("expiry task started (every %ss)", app.config["EXPIRY_INTERVAL_SECONDS"])
    return True
