"""The /coop namespace: a cooperative's dashboard hears about its own new shipments only."""

from __future__ import annotations

from shop.extensions import socketio


def _socket(app, login_as, user):
    """A Socket.IO test client carrying the user's login cookie."""
    api = login_as(user)
    return socketio.test_client(app, namespace="/coop", flask_test_client=api.client)


def _shipments(client) -> list[dict]:
    return [m["args"][0] for m in client.get_received("/coop") if m["name"] == "shipment"]


def test_paid_order_reaches_its_cooperatives_dashboard_only(scene, login_as, app):
    mine = _socket(app, login_as, scene.member_a)
    theirs = _socket(app, login_as, scene.member_b)
    admin = _socket(app, login_as, scene.admin)
    assert mine.is_connected("/coop") and theirs.is_connected("/coop")

    order = scene.paid_order([(scene.leg, 2)])

    received = _shipments(mine)
    assert [(s["id"], s["status"], s["order_number"]) for s in received] == [
        (order["shipments"][scene.coop_a], "pending", order["number"])
    ]
    assert received[0]["items"][0]["quantity"] == 2
    assert _shipments(theirs) == []
    assert [s["id"] for s in _shipments(admin)] == [order["shipments"][scene.coop_a]]


def test_status_changes_are_announced(scene, login_as, app):
    order = scene.paid_order([(scene.leg, 1)])
    client = _socket(app, login_as, scene.member_a)

    login_as(scene.member_a).post(f"/fulfilment/shipments/{order['shipments'][scene.coop_a]}/pack")

    assert [s["status"] for s in _shipments(client)] == ["packed"]


def test_buyers_hosts_and_strangers_cannot_listen(scene, login_as, app):
    for user in (scene.buyer, scene.host):
        assert not _socket(app, login_as, user).is_connected("/coop")
    assert not socketio.test_client(app, namespace="/coop").is_connected("/coop")
