"""The /live namespace through Flask-SocketIO's test client: every event of API.md's table."""

from __future__ import annotations

import time

from tests.live.conftest import checkout, events


def _join(sio, session_id: int, **extra) -> dict:
    return sio.emit("join", {"session_id": session_id, **extra}, namespace="/live", callback=True)


def _count_becomes(sio, expected: int, timeout: float = 10.0) -> int:
    """Viewer counts are paced to one per second per room: wait for the room to hear `expected`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for event in events(sio, "viewers"):
            last = event["count"]
        if last == expected:
            return last
        time.sleep(0.05)
    return last


def test_join_acks_the_state_and_counts_viewers(live, socket_client, live_browser):
    live.pin(live_price=6800)
    first = socket_client(live_browser(live.session_id))

    ack = _join(first, live.session_id, viewer_key="abc")
    assert ack["ok"] is True
    assert ack["state"]["status"] == "live" and ack["state"]["viewers"] == 1
    assert ack["state"]["pinned"]["variants"][0]["live_price"] == 6800

    second = socket_client(live_browser(live.session_id))
    assert _join(second, live.session_id)["state"]["viewers"] == 2
    assert _count_becomes(first, 2) == 2
    second.disconnect(namespace="/live")
    assert _count_becomes(first, 1) == 1


def test_join_records_unique_viewers_and_peak(
    live, socket_client, factory, login_as, app, live_browser
):
    from live import identity
    from live.models import LiveSession, ViewerSample, ViewerVisit
    from shop.extensions import db

    buyer = login_as(factory.user("buyer"))
    a, b = socket_client(buyer), socket_client(buyer)  # one person, two tabs
    anonymous = live_browser(live.session_id)
    c = socket_client(anonymous)
    for sio in (a, b):
        _join(sio, live.session_id)
    _join(c, live.session_id, viewer_key="anon-1")

    with app.test_request_context():
        cookies = {"farmlive_viewer": anonymous.client.get_cookie("farmlive_viewer").value}
        browser_id = identity.anonymous_id(cookies)
        visits = db.session.query(ViewerVisit).filter_by(session_id=live.session_id).all()
        assert sorted(v.viewer_key for v in visits) == [f"a:{browser_id}", f"u:{buyer_id(buyer)}"]
        assert db.session.get(LiveSession, live.session_id).peak_viewers == 2
        samples = db.session.query(ViewerSample).filter_by(session_id=live.session_id).all()
        assert [s.viewers for s in samples] == [2]


def buyer_id(api_client) -> int:
    return api_client.get("/auth/me").get_json()["id"]


def test_pin_unpin_and_status_reach_the_room(scheduled, socket_client):
    viewer = socket_client()
    _join(viewer, scheduled.session_id)

    scheduled.host_api.post(f"/live-sessions/{scheduled.session_id}/start")
    assert events(viewer, "status") == [{"session_id": scheduled.session_id, "status": "live"}]

    pin = scheduled.pin(live_price=5000, per_buyer_limit=2)
    pinned = events(viewer, "pinned")
    assert pinned == [{"session_id": scheduled.session_id, "pin": pin}]

    scheduled.host_api.delete(f"/live-sessions/{scheduled.session_id}/pins/current")
    assert events(viewer, "unpinned") == [{"session_id": scheduled.session_id}]

    scheduled.pin()
    scheduled.host_api.post(f"/live-sessions/{scheduled.session_id}/end")
    received = [e["name"] for e in viewer.get_received("/live") if e["name"] != "viewers"]
    assert received == ["pinned", "unpinned", "status"]


def test_checkout_sends_stock_and_payment_sends_a_masked_sale(
    live, socket_client, factory, login_as, app
):
    live.pin(live_price=6800)
    viewer = socket_client()
    _join(viewer, live.session_id)
    buyer = login_as(factory.user("buyer"))

    order = checkout(buyer, live.session_id, live.variant_id, quantity=2).get_json()
    assert events(viewer, "stock") == [
        {"session_id": live.session_id, "variant_id": live.variant_id, "stock": 8}
    ]

    from orders.services import mark_paid

    with app.test_request_context():
        mark_paid(order["id"], provider="demo")
    sale = events(viewer, "sale")
    assert sale == [
        {
            "session_id": live.session_id,
            "buyer": "尉犁的张**",
            "product_name": sale[0]["product_name"],
            "quantity": 2,
        }
    ]
    assert sale[0]["product_name"].startswith("羊肉")


def test_stock_news_only_for_featured_variants(live, socket_client, factory, login_as):
    live.pin()
    viewer = socket_client()
    _join(viewer, live.session_id)
    other = factory.product()
    buyer = login_as(factory.user("buyer"))

    buyer.post(
        "/orders",
        {
            "items": [{"variant_id": other["variant_ids"][0], "quantity": 1}],
            "address": {
                "name": "张伟",
                "phone": "13800000000",
                "region": "新疆 尉犁县",
                "detail": "1 号",
            },
        },
    )
    assert events(viewer, "stock") == []


def test_messages_need_login_and_reach_the_room(live, socket_client, factory, login_as, app):
    anonymous = socket_client()
    _join(anonymous, live.session_id)
    refused = anonymous.emit(
        "message", {"session_id": live.session_id, "body": "hi"}, namespace="/live", callback=True
    )
    assert refused["error"]["code"] == "unauthorized"

    writer = socket_client(login_as(factory.user("buyer", name="李四")))
    _join(writer, live.session_id)
    body = '<img src=x onerror="alert(1)">'
    ack = writer.emit(
        "message",
        {"session_id": live.session_id, "body": body, "kind": "question"},
        namespace="/live",
        callback=True,
    )
    assert ack["ok"] is True
    received = events(anonymous, "message")
    assert len(received) == 1
    assert received[0]["body"] == body and received[0]["user_name"] == "李四"
    assert received[0]["kind"] == "question" and set(received[0]) >= {
        "id",
        "session_id",
        "created_at",
    }

    too_fast = writer.emit(
        "message",
        {"session_id": live.session_id, "body": "again"},
        namespace="/live",
        callback=True,
    )
    assert too_fast["error"]["code"] == "too_many_messages"
    app.config["CHAT_RATE_LIMIT_SECONDS"] = 0
    too_long = writer.emit(
        "message",
        {"session_id": live.session_id, "body": "长" * 501},
        namespace="/live",
        callback=True,
    )
    assert too_long["error"]["code"] == "invalid"


def test_hidden_message_vanishes_for_everyone(live, socket_client, factory, login_as):
    viewer = socket_client()
    _join(viewer, live.session_id)
    writer = socket_client(login_as(factory.user("buyer")))
    ack = writer.emit(
        "message", {"session_id": live.session_id, "body": "spam"}, namespace="/live", callback=True
    )

    live.host_api.patch(f"/live-sessions/{live.session_id}/messages/{ack['id']}", {"hidden": True})
    updates = events(viewer, "message_update")
    assert updates[-1]["id"] == ack["id"] and updates[-1]["hidden"] is True


def test_join_of_an_unknown_session_is_refused(app, socket_client):
    sio = socket_client()
    ack = _join(sio, 4242)
    assert ack["error"]["code"] == "live_session_not_found"
    assert _join(sio, "nope" and None)["error"]["code"] == "invalid"


def test_host_console_join_is_not_a_viewer(live, socket_client, live_browser):
    console = socket_client(live.host_api)
    assert _join(console, live.session_id, console=True)["state"]["viewers"] == 0
    viewer = socket_client(live_browser(live.session_id))
    assert _join(viewer, live.session_id)["state"]["viewers"] == 1
