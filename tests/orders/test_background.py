"""Background loops survive anything a pass throws at them, and /healthz says when one is stale."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from orders import tasks
from orders.models import Order
from orders.services import Line, place_order
from shop.extensions import db
from shop.models import User, utcnow
from tests.orders.conftest import ADDRESS


def test_a_pass_whose_cleanup_fails_too_does_not_end_the_loop(app, monkeypatch):
    # given a pass that fails, on a session whose rollback fails as well (a dropped connection)
    def broken(*_args, **_kw):
        raise RuntimeError("the connection is gone")

    monkeypatch.setattr(db.session, "rollback", broken)
    # when the loop runs a pass of it, then nothing escapes
    assert tasks._one_pass(app, broken, "expiry") == 0


def test_healthz_is_unhealthy_while_a_loop_is_stale(app):
    from shop.health import expect_loop

    client = app.test_client()
    expect_loop(app, "expiry", 0.1)
    assert client.get("/healthz").get_json()["checks"]["expiry"] == "ok"
    # when no pass has succeeded for much longer than its interval
    app.extensions["farmlive.loops"]["expiry"]["last"] -= 120
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["expiry"].startswith("stale")


@pytest.mark.only_db("postgresql")
def test_the_expiry_loop_survives_killed_database_connections(app, shop):
    # given the expiry loop running every 50 ms in this process
    app.config["EXPIRY_INTERVAL_SECONDS"] = 0.05
    app.config["RUN_BACKGROUND_TASKS"] = True
    from shop.health import expect_loop

    expect_loop(app, "expiry", 0.05)
    stopped = threading.Event()
    loop = threading.Thread(
        target=tasks.run_expiry, args=(app,), kwargs={"stop": stopped.is_set}, daemon=True
    )
    loop.start()
    killer = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        # when every connection of the app is killed by the server, several times over
        for _ in range(5):
            with killer.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            time.sleep(0.1)
        # then a hold that runs out afterwards is still released by the same loop
        with app.app_context():
            user = db.session.get(User, shop.buyer.id)
            order_id = place_order(
                user, [Line(shop.leg, 2)], ADDRESS, clock=lambda: utcnow() - timedelta(hours=1)
            ).id
        deadline = time.monotonic() + 10
        status = "pending_payment"
        while time.monotonic() < deadline and status == "pending_payment":
            time.sleep(0.1)
            with app.app_context():
                status = db.session.get(Order, order_id).status
                db.session.remove()
        assert status == "cancelled"
        assert loop.is_alive()
        assert app.test_client().get("/healthz").get_json()["checks"]["expiry"] == "ok"
    finally:
        stopped.set()
        loop.join(5)
        killer.dispose()
