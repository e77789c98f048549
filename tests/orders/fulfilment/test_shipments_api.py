"""API.md's fulfilment rows: list, pack, ship, confirm receipt; roles, isolation, transitions."""

from __future__ import annotations

from tests.orders.fulfilment.conftest import make_live_session


def test_paid_order_appears_in_its_cooperatives_queue_only(scene, login_as):
    order = scene.paid_order([(scene.leg, 2), (scene.pear, 1)])

    a = login_as(scene.member_a).get("/fulfilment/shipments").get_json()["items"]
    b = login_as(scene.member_b).get("/fulfilment/shipments").get_json()["items"]

    assert [s["id"] for s in a] == [order["shipments"][scene.coop_a]]
    assert [s["id"] for s in b] == [order["shipments"][scene.coop_b]]
    shipment = a[0]
    assert {
        "id",
        "order_id",
        "cooperative_id",
        "status",
        "carrier",
        "tracking_number",
        "items",
    } <= set(shipment)
    assert shipment["status"] == "pending" and shipment["order_number"] == order["number"]
    assert [(i["variant_id"], i["quantity"]) for i in shipment["items"]] == [(scene.leg, 2)]


def test_admin_sees_every_cooperatives_queue(scene, login_as):
    order = scene.paid_order([(scene.leg, 1), (scene.pear, 1)])

    items = login_as(scene.admin).get("/fulfilment/shipments").get_json()["items"]

    assert sorted(s["id"] for s in items) == sorted(order["shipments"].values())


def test_filters_by_status_and_live_session(scene, login_as):
    session_id = make_live_session(scene.app, scene.host.id)
    live = scene.paid_order([(scene.leg, 1)], live_session_id=session_id)
    other = scene.paid_order([(scene.lamb, 1)])
    api = login_as(scene.member_a)
    api.post(f"/fulfilment/shipments/{other['shipments'][scene.coop_a]}/pack")

    by_session = api.get(f"/fulfilment/shipments?live_session_id={session_id}").get_json()
    packed = api.get("/fulfilment/shipments?status=packed").get_json()
    both = api.get("/fulfilment/shipments?status=pending,packed").get_json()

    assert [s["order_id"] for s in by_session["items"]] == [live["id"]]
    assert [s["order_id"] for s in packed["items"]] == [other["id"]]
    assert len(both["items"]) == 2
    bad = api.get("/fulfilment/shipments?status=lost")
    assert bad.status_code == 422 and "status" in bad.get_json()["error"]["fields"]


def test_pack_then_ship_records_events_and_ships_the_order(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]
    api = login_as(scene.member_a)

    packed = api.post(f"/fulfilment/shipments/{shipment_id}/pack")
    shipped = api.post(
        f"/fulfilment/shipments/{shipment_id}/ship",
        {"carrier": "顺丰速运", "tracking_number": "SF1234567890"},
    )

    assert packed.status_code == 200 and packed.get_json()["status"] == "packed"
    body = shipped.get_json()
    assert shipped.status_code == 200 and body["status"] == "shipped"
    assert (body["carrier"], body["tracking_number"]) == ("顺丰速运", "SF1234567890")
    assert scene.order_status(order["id"]) == "shipped"
    assert scene.events(order["id"])[-3:] == ["shipment_packed", "shipment_shipped", "shipped"]


def test_buyer_sees_tracking_on_the_order(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    login_as(scene.member_a).post(
        f"/fulfilment/shipments/{order['shipments'][scene.coop_a]}/ship",
        {"carrier": "中通快递", "tracking_number": "ZT778899"},
    )

    body = login_as(scene.buyer).get(f"/orders/{order['id']}").get_json()

    assert body["status"] == "shipped"
    assert [(s["carrier"], s["tracking_number"]) for s in body["shipments"]] == [
        ("中通快递", "ZT778899")
    ]


def test_order_is_shipped_only_when_all_its_shipments_are(scene, login_as):
    order = scene.paid_order([(scene.leg, 1), (scene.pear, 2)])
    ship = {"carrier": "韵达快递", "tracking_number": "YD1"}

    login_as(scene.member_a).post(
        f"/fulfilment/shipments/{order['shipments'][scene.coop_a]}/ship", ship
    )
    assert scene.order_status(order["id"]) == "paid"

    login_as(scene.member_b).post(
        f"/fulfilment/shipments/{order['shipments'][scene.coop_b]}/ship", ship
    )
    assert scene.order_status(order["id"]) == "shipped"


def test_ship_needs_carrier_and_tracking_number(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    url = f"/fulfilment/shipments/{order['shipments'][scene.coop_a]}/ship"
    api = login_as(scene.member_a)

    missing = api.post(url, {})
    blank = api.post(url, {"carrier": "  ", "tracking_number": "SF1"})

    assert missing.status_code == 422
    assert set(missing.get_json()["error"]["fields"]) == {"carrier", "tracking_number"}
    assert blank.status_code == 422 and set(blank.get_json()["error"]["fields"]) == {"carrier"}
    assert scene.shipment(order["shipments"][scene.coop_a])["status"] == "pending"


def test_transitions_only_go_forward(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]
    api = login_as(scene.member_a)
    api.post(
        f"/fulfilment/shipments/{shipment_id}/ship", {"carrier": "EMS", "tracking_number": "E1"}
    )

    again = api.post(
        f"/fulfilment/shipments/{shipment_id}/ship", {"carrier": "EMS", "tracking_number": "E2"}
    )
    pack = api.post(f"/fulfilment/shipments/{shipment_id}/pack")

    for response in (again, pack):
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_transition"
    assert scene.shipment(shipment_id)["tracking"] == "E1"


def test_another_cooperatives_shipment_is_404(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]
    api = login_as(scene.member_b)

    assert api.get(f"/fulfilment/shipments/{shipment_id}").status_code == 404
    assert api.post(f"/fulfilment/shipments/{shipment_id}/pack").status_code == 404
    ship = api.post(
        f"/fulfilment/shipments/{shipment_id}/ship", {"carrier": "x", "tracking_number": "y"}
    )
    assert ship.status_code == 404
    assert scene.shipment(shipment_id)["status"] == "pending"


def test_buyers_and_hosts_cannot_touch_shipments(scene, login_as, api):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]

    for user in (scene.buyer, scene.host):
        client = login_as(user)
        assert client.get("/fulfilment/shipments").status_code == 403
        assert client.get("/fulfilment/pick-list").status_code == 403
        assert client.post(f"/fulfilment/shipments/{shipment_id}/pack").status_code == 403
        assert client.post(f"/fulfilment/shipments/{shipment_id}/ship", {}).status_code == 403
    assert api.get("/fulfilment/shipments").status_code == 401
    assert scene.shipment(shipment_id)["status"] == "pending"


def test_admin_may_pack_any_cooperatives_shipment(scene, login_as):
    order = scene.paid_order([(scene.pear, 1)])

    response = login_as(scene.admin).post(
        f"/fulfilment/shipments/{order['shipments'][scene.coop_b]}/pack"
    )

    assert response.status_code == 200 and response.get_json()["status"] == "packed"


def test_refunded_orders_shipments_leave_the_queue(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]

    refund = login_as(scene.admin).post(f"/orders/{order['id']}/cancel")
    assert refund.status_code == 200 and refund.get_json()["status"] == "refunded"

    api = login_as(scene.member_a)
    assert api.get("/fulfilment/shipments").get_json()["items"] == []
    assert api.get("/fulfilment/pick-list").get_json()["items"] == []
    assert api.post(f"/fulfilment/shipments/{shipment_id}/pack").status_code == 409
    cancelled = api.get("/fulfilment/shipments?status=cancelled").get_json()["items"]
    assert [s["id"] for s in cancelled] == [shipment_id]
