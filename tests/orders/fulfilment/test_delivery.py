"""Confirm receipt by the buyer, and automatic delivery AUTO_DELIVER_DAYS after shipping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SHIP = {"carrier": "顺丰速运", "tracking_number": "SF42"}


def _ship_all(scene, login_as, order):
    for coop, shipment_id in order["shipments"].items():
        member = scene.member_a if coop == scene.coop_a else scene.member_b
        response = login_as(member).post(f"/fulfilment/shipments/{shipment_id}/ship", SHIP)
        assert response.status_code == 200


def test_buyer_confirms_receipt(scene, login_as):
    order = scene.paid_order([(scene.leg, 1), (scene.pear, 1)])
    _ship_all(scene, login_as, order)

    response = login_as(scene.buyer).post(f"/orders/{order['id']}/confirm-receipt")

    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "delivered"
    assert {s["status"] for s in body["shipments"]} == {"delivered"}
    assert scene.events(order["id"])[-1] == "receipt_confirmed"


def test_receipt_cannot_be_confirmed_before_shipping_or_twice(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    buyer = login_as(scene.buyer)

    early = buyer.post(f"/orders/{order['id']}/confirm-receipt")
    _ship_all(scene, login_as, order)
    assert buyer.post(f"/orders/{order['id']}/confirm-receipt").status_code == 200
    twice = buyer.post(f"/orders/{order['id']}/confirm-receipt")

    for response in (early, twice):
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_transition"


def test_only_the_buyer_confirms_receipt(scene, login_as, factory):
    order = scene.paid_order([(scene.leg, 1)])
    _ship_all(scene, login_as, order)

    stranger = login_as(factory.user("buyer")).post(f"/orders/{order['id']}/confirm-receipt")
    member = login_as(scene.member_a).post(f"/orders/{order['id']}/confirm-receipt")

    assert stranger.status_code == 404
    assert member.status_code == 403
    assert scene.order_status(order["id"]) == "shipped"


def test_auto_deliver_after_configured_days(scene, login_as, app):
    from orders.fulfilment.services import auto_deliver_due

    order = scene.paid_order([(scene.leg, 1)])
    _ship_all(scene, login_as, order)
    days = app.config["AUTO_DELIVER_DAYS"]
    now = datetime.now(UTC)

    with app.app_context():
        assert auto_deliver_due(clock=lambda: now + timedelta(days=days) - timedelta(hours=1)) == 0
    assert scene.order_status(order["id"]) == "shipped"
    with app.app_context():
        assert auto_deliver_due(clock=lambda: now + timedelta(days=days, hours=1)) == 1
    assert scene.order_status(order["id"]) == "delivered"
    assert scene.events(order["id"])[-1] == "delivered_automatically"


def test_auto_deliver_command(scene, login_as, app):
    order = scene.paid_order([(scene.leg, 1)])
    _ship_all(scene, login_as, order)
    app.config["AUTO_DELIVER_DAYS"] = 0

    result = app.test_cli_runner().invoke(args=["orders", "auto-deliver"])

    assert result.exit_code == 0, result.output
    assert "delivered 1 order(s)" in result.output
    assert scene.order_status(order["id"]) == "delivered"
