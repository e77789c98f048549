"""While PostgreSQL restarts, a production server process answers 503 in the API's error shape
(not a hang, not a crash); while Redis restarts, it serves on without it (tests/scale/
test_redis_faults.py has the silent kind). Either way it recovers by itself once the service is
back.

The outage is played with a TCP proxy between the server and the real service, so the
machine's PostgreSQL and Redis keep running for everyone else.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.scale.conftest import HttpUser, Viewer, scale_redis
from tests.shop.test_dead_connection import Terminator, hammer_while_terminating

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow]


def wait_until(check, attempts: int = 120, pause: float = 0.5):
    """Retry `check` until it returns something truthy; return the last result."""
    result = None
    for _ in range(attempts):
        result = check()
        if result:
            return result
        time.sleep(pause)
    return result


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "unavailable"
    assert response.json()["error"]["message"]


def test_database_outage_answers_503_then_recovers_without_restart(
    gunicorn, tcp_proxy, database_url, live_stage
):
    proxy, proxied_url = tcp_proxy(database_url)
    server = gunicorn(DATABASE_URL=proxied_url)
    stage = live_stage
    buyer_ref, host_ref = stage["buyers"][0], stage["host"]
    buyer = HttpUser(server.url).login(buyer_ref.email, buyer_ref.password)
    host = HttpUser(server.url).login(host_ref.email, host_ref.password)
    assert buyer.get("/products").status_code == 200

    proxy.cut()  # PostgreSQL goes away: open connections die, new ones are refused

    assert_unavailable(buyer.get("/products"))
    assert_unavailable(buyer.get("/orders"))
    assert_unavailable(buyer.checkout(stage["session_id"], stage["product"]["variant_ids"][0]))
    health = buyer.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["checks"]["database"] != "ok"
    page = buyer.http.get(server.url + "/", timeout=20)
    assert page.status_code == 503
    assert server.proc.poll() is None, "the server process died"

    proxy.restore()  # back: the same process serves again, no restart

    assert wait_until(lambda: buyer.get("/products").status_code == 200)
    assert buyer.get("/healthz").json() == {"status": "ok", "checks": {"database": "ok"}}
    pinned = host.post(
        f"/live-sessions/{stage['session_id']}/pins", {"product_id": stage["product"]["id"]}
    )
    assert pinned.status_code == 201, pinned.text
    order = buyer.checkout(stage["session_id"], stage["product"]["variant_ids"][0])
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "pending_payment"


def test_connections_dying_mid_request_are_503_under_gunicorn(gunicorn, database_url, factory):
    """The reported failure: a backend terminated mid-request (a PostgreSQL restart) came
    back as gunicorn's HTML "Internal Server Error" from the session teardown."""
    factory.product()
    buyer = factory.user("buyer")
    terminate = Terminator(database_url)
    server = gunicorn(DATABASE_URL=terminate.server_url)
    try:
        hammer_while_terminating(server.url, buyer.email, buyer.password, terminate)
    finally:
        terminate.engine.dispose()
    assert server.proc.poll() is None, "the server process died"


def test_redis_outage_keeps_shopping_up_and_socket_news_comes_back(
    gunicorn, tcp_proxy, redis_url, live_stage
):
    proxy, proxied_url = tcp_proxy(scale_redis(redis_url))
    server = gunicorn(REDIS_URL=proxied_url, SOCKETIO_CHANNEL=f"scale-{uuid.uuid4().hex}")
    stage = live_stage
    session_id, product_id = stage["session_id"], stage["product"]["id"]
    host = HttpUser(server.url).login(stage["host"].email, stage["host"].password)
    viewer = Viewer(server.url, session_id)
    try:
        assert viewer.join()["ok"] is True

        proxy.cut()  # Redis goes away

        health = host.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"]["database"] == "ok"
        assert health.json()["checks"]["redis"] != "ok"
        assert host.get("/products").status_code == 200  # the shop does not need Redis
        late = Viewer(server.url, session_id)
        try:
            ack = late.join()  # watching does not need Redis: the count is this process's own
            assert ack["ok"] is True, ack
            assert isinstance(ack["state"]["viewers"], int)
        finally:
            late.close()
        assert server.proc.poll() is None, "the server process died"

        proxy.restore()

        assert wait_until(lambda: host.get("/healthz").status_code == 200)
        # The Socket.IO queue listener reconnects with back-off; pins made meanwhile are lost
        # for other processes, so keep pinning until one arrives through Redis again.
        arrived = wait_until(
            lambda: (
                host.post(f"/live-sessions/{session_id}/pins", {"product_id": product_id})
                and viewer.wait_for_pin(product_id, timeout=1.0)
            ),
            attempts=60,
        )
        assert arrived is not None and arrived["session_id"] == session_id
    finally:
        viewer.close()
