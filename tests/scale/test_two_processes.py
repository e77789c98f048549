"""Two production server processes (gunicorn, one gevent worker each) on one PostgreSQL and one
Redis: what one process does reaches the viewers and buyers of the other."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.scale.conftest import HttpUser, Viewer, scale_redis

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow]


@pytest.fixture
def two_servers(gunicorn, redis_url):
    env = {"REDIS_URL": scale_redis(redis_url), "SOCKETIO_CHANNEL": f"scale-{uuid.uuid4().hex}"}
    return gunicorn(**env), gunicorn(**env)


def test_a_pin_made_through_one_process_reaches_viewers_on_the_other(two_servers, live_stage):
    first, second = two_servers
    session_id = live_stage["session_id"]
    product_id = live_stage["product"]["id"]
    viewers = [Viewer(second.url, session_id), Viewer(first.url, session_id)]
    try:
        for viewer in viewers:
            assert viewer.join()["ok"] is True

        host = HttpUser(first.url).login(live_stage["host"].email, live_stage["host"].password)
        response = host.post(f"/live-sessions/{session_id}/pins", {"product_id": product_id})
        assert response.status_code == 201, response.text

        on_other, on_same = (viewer.wait_for_pin(product_id) for viewer in viewers)
        assert on_other is not None, "the viewer on the other process never saw the pin"
        assert on_same is not None
        assert on_other["session_id"] == session_id
        assert on_other["pin"]["variants"][0]["id"] == live_stage["product"]["variant_ids"][0]
    finally:
        for viewer in viewers:
            viewer.close()


def test_buyers_on_both_processes_sell_exactly_the_stock(two_servers, live_stage):
    first, second = two_servers
    session_id = live_stage["session_id"]
    variant_id = live_stage["product"]["variant_ids"][0]
    host = HttpUser(first.url).login(live_stage["host"].email, live_stage["host"].password)
    pinned = host.post(
        f"/live-sessions/{session_id}/pins",
        {"product_id": live_stage["product"]["id"], "per_buyer_limit": 1},
    )
    assert pinned.status_code == 201, pinned.text
    buyers = [
        HttpUser((first, second)[i % 2].url).login(user.email, user.password)
        for i, user in enumerate(live_stage["buyers"])
    ]

    with ThreadPoolExecutor(max_workers=len(buyers)) as pool:
        answers = list(pool.map(lambda b: b.checkout(session_id, variant_id), buyers))

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 5 + [409] * 7, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["code"], answer.text
    sold_on = {b.base_url for b, a in zip(buyers, answers, strict=True) if a.status_code == 201}
    orders = [a.json() for a in answers if a.status_code == 201]
    assert all(o["status"] == "pending_payment" for o in orders)
    assert len({o["id"] for o in orders}) == 5
    assert sold_on  # at least one process sold (which ones won is up to the race)
    for server in two_servers:
        product = HttpUser(server.url).get(f"/products/{live_stage['product']['id']}").json()
        assert product["variants"][0]["stock"] == 0


def test_a_process_s_rooms_learn_the_other_process_s_news_without_reading_again(
    gunicorn, redis_url, live_stage
):
    """Each process tells joining viewers the pin from memory (live.rooms): a pin and its stock
    made through the other process must reach that memory through Redis, not by waiting for the
    room to be read again (ROOM_CACHE_SECONDS is an hour here)."""
    env = {
        "REDIS_URL": scale_redis(redis_url),
        "SOCKETIO_CHANNEL": f"scale-{uuid.uuid4().hex}",
        "ROOM_CACHE_SECONDS": "3600",
        "STOCK_BROADCAST_INTERVAL": "0.1",
    }
    first, second = gunicorn(**env), gunicorn(**env)
    session_id, product = live_stage["session_id"], live_stage["product"]
    early = Viewer(second.url, session_id)
    try:
        assert early.join()["state"]["pinned"] is None  # the second process has read the room

        host = HttpUser(first.url).login(live_stage["host"].email, live_stage["host"].password)
        assert host.post(f"/live-sessions/{session_id}/pins", {"product_id": product["id"]})
        assert early.wait_for_pin(product["id"]) is not None
        buyer = live_stage["buyers"][0]
        tap = HttpUser(first.url).login(buyer.email, buyer.password)
        assert tap.checkout(session_id, product["variant_ids"][0]).status_code == 201

        def told() -> dict | None:
            late = Viewer(second.url, session_id)
            try:
                pin = late.join()["state"]["pinned"]
            finally:
                late.close()
            return pin if pin and pin["variants"][0]["stock"] == 4 else None

        pin = next((p for p in (told() for _ in range(20)) if p), None)
        assert pin is not None, "the second process kept telling joiners the old room"
        assert pin["product"]["id"] == product["id"]
    finally:
        early.close()
