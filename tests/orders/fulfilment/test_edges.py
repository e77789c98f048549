"""The cooperative's side of "input never becomes a 500": odd form values on /coop, a paid order
whose stored address holds a lone surrogate, and events a client sends to /coop."""

from __future__ import annotations

import re

import pytest

from shop.extensions import socketio

SURROGATE = "Zhang\ud800"


def _page(login_as, user):
    client = login_as(user).client
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/coop").get_data(True))
    return client, token.group(1)


def _stock(scene, login_as) -> int:
    product = login_as(scene.member_a).get(f"/products/{scene.mutton['id']}").get_json()
    return product["variants"][1]["stock"]


@pytest.mark.parametrize("stock", ["99999999999", str(2**63), "-1"])
def test_stock_out_of_range_is_a_message_not_a_crash(scene, login_as, stock: str) -> None:
    client, token = _page(login_as, scene.member_a)

    response = client.post(
        f"/coop/stock/{scene.lamb}",
        data={"csrf_token": token, "stock": stock, "next": "/coop"},
        follow_redirects=True,
    )

    assert response.status_code == 200
    assert "10000000" in response.get_data(as_text=True)  # the allowed range, in the flash
    assert _stock(scene, login_as) == 100


@pytest.mark.parametrize("target", ["/coop\r\nSet-Cookie: x=1", "/coop\nX-Evil: 1", "//evil/coop"])
def test_a_crlf_or_foreign_next_goes_back_to_the_dashboard(scene, login_as, target: str) -> None:
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]
    client, token = _page(login_as, scene.member_a)
    form = {"csrf_token": token, "next": target}

    for path, extra in [
        (f"/coop/stock/{scene.lamb}", {"stock": "5"}),
        (f"/coop/shipments/{shipment_id}/pack", {}),
        (f"/coop/shipments/{shipment_id}/ship", {"carrier": "EMS", "tracking_number": "E1"}),
    ]:
        response = client.post(path, data={**form, **extra})

        assert response.status_code == 302, (path, response.status_code)
        assert response.headers["Location"] == "/coop"
        assert "X-Evil" not in response.headers and "x=1" not in str(response.headers)
    assert scene.shipment(shipment_id)["status"] == "shipped"


def test_a_paid_order_with_a_stored_surrogate_still_ships(scene, login_as, app) -> None:
    """The reported outage: one bad address and /coop, the shipments API, the CSV export and
    the packing slips all answered 500 until someone edited the row."""
    from orders.models import Order
    from shop.extensions import db

    order = scene.paid_order([(scene.leg, 1)])
    with app.app_context():
        row = db.session.get(Order, order["id"])
        row.address = {**row.address, "name": SURROGATE, "detail": f"人民路 {SURROGATE}"}
        db.session.commit()
    shipment_id = order["shipments"][scene.coop_a]

    for user in (scene.member_a, scene.admin):
        api = login_as(user)
        for path in [
            "/coop",
            "/coop/slips",
            f"/coop/slips?ids={shipment_id}",
            "/coop/pick-list",
            "/api/v1/fulfilment/shipments",
            f"/api/v1/fulfilment/shipments/{shipment_id}",
            "/api/v1/fulfilment/shipments/export",
        ]:
            response = api.client.get(path)
            assert response.status_code == 200, (user, path, response.status_code)
    admin_view = login_as(scene.admin).client.get(f"/orders/{order['id']}")
    assert admin_view.status_code == 200 and "Zhang\ufffd" in admin_view.get_data(as_text=True)
    export = login_as(scene.member_a).client.get("/api/v1/fulfilment/shipments/export")
    assert "Zhang\ufffd" in export.get_data().decode("utf-8-sig")
    slips = login_as(scene.member_a).client.get("/coop/slips").get_data(as_text=True)
    assert "Zhang\ufffd" in slips
    packed = login_as(scene.member_a).post(f"/fulfilment/shipments/{shipment_id}/pack")
    assert packed.status_code == 200 and packed.get_json()["status"] == "packed"


@pytest.mark.parametrize("payload", [None, [], "x", 5, {"session_id": SURROGATE}])
def test_any_event_sent_to_coop_is_answered_with_an_error(scene, login_as, app, payload) -> None:
    client = socketio.test_client(
        app, namespace="/coop", flask_test_client=login_as(scene.member_a).client
    )
    assert client.is_connected("/coop")

    ack = client.emit("join", payload, namespace="/coop", callback=True)
    bare = client.emit("refresh", namespace="/coop", callback=True)

    for answer in (ack, bare):
        assert answer["ok"] is False
        assert answer["error"]["code"] == "not_found"
        assert set(answer["error"]) == {"code", "message", "fields"}
    assert client.is_connected("/coop")
