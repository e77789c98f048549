"""The /coop pages, pick list, packing slips, stock adjustment and the public trace page."""

from __future__ import annotations

import re


def _page_client(login_as, user):
    return login_as(user).client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_dashboard_shows_own_queue_and_refuses_others(scene, login_as, client):
    mine = scene.paid_order([(scene.leg, 2)])
    theirs = scene.paid_order([(scene.pear, 1)])

    html = _page_client(login_as, scene.member_a).get("/coop").get_data(as_text=True)

    assert mine["number"] in html and theirs["number"] not in html
    assert "/coop/products" in html and "socket.io.min.js" in html
    assert _page_client(login_as, scene.buyer).get("/coop").status_code == 403
    assert client.get("/coop").status_code == 302  # to the login page


def test_pack_and_ship_from_the_dashboard_forms(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]
    page = _page_client(login_as, scene.member_a)
    token = _csrf(page.get("/coop").get_data(as_text=True))

    page.post(f"/coop/shipments/{shipment_id}/pack", data={"csrf_token": token})
    assert scene.shipment(shipment_id)["status"] == "packed"
    response = page.post(
        f"/coop/shipments/{shipment_id}/ship",
        data={"csrf_token": token, "carrier": "顺丰速运", "tracking_number": "SF9"},
        follow_redirects=True,
    )

    assert scene.shipment(shipment_id) == {
        "status": "shipped",
        "carrier": "顺丰速运",
        "tracking": "SF9",
    }
    assert order["number"] in response.get_data(as_text=True)  # the flash names the order


def test_missing_tracking_number_is_shown_not_applied(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    shipment_id = order["shipments"][scene.coop_a]
    page = _page_client(login_as, scene.member_a)
    token = _csrf(page.get("/coop").get_data(as_text=True))

    response = page.post(
        f"/coop/shipments/{shipment_id}/ship",
        data={"csrf_token": token, "carrier": "EMS", "tracking_number": ""},
        follow_redirects=True,
    )

    assert "tracking_number" in response.get_data(as_text=True)
    assert scene.shipment(shipment_id)["status"] == "pending"


def test_csv_upload_page_lists_bad_lines(scene, login_as):
    import io

    order = scene.paid_order([(scene.leg, 1)])
    page = _page_client(login_as, scene.member_a)
    token = _csrf(page.get("/coop").get_data(as_text=True))
    text = f"order number,carrier,tracking number\n{order['number']},EMS,E1\nFLNOPE,EMS,E2\n"

    response = page.post(
        "/coop/shipments/import",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "ship.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )

    assert "第 3 行" in response.get_data(as_text=True)
    assert scene.shipment(order["shipments"][scene.coop_a])["status"] == "pending"


def test_stock_adjustment_warns_when_low(scene, login_as):
    page = _page_client(login_as, scene.member_a)
    token = _csrf(page.get("/coop").get_data(as_text=True))

    response = page.post(
        f"/coop/stock/{scene.lamb}",
        data={"csrf_token": token, "stock": "3", "next": "/coop"},
        follow_redirects=True,
    )

    html = response.get_data(as_text=True)
    assert "库存不多了" in html and "库存不足" in html
    assert (
        login_as(scene.member_a)
        .get(f"/products/{scene.mutton['id']}")
        .get_json()["variants"][1]["stock"]
        == 3
    )
    refused = page.post(
        f"/coop/stock/{scene.pear}", data={"csrf_token": token, "stock": "0"}, follow_redirects=True
    )
    assert (
        login_as(scene.member_b)
        .get(f"/products/{scene.pears['id']}")
        .get_json()["variants"][0]["stock"]
        == 100
    )
    assert refused.status_code == 200


def test_pick_list_page_is_printable(scene, login_as):
    scene.paid_order([(scene.leg, 2)])
    scene.paid_order([(scene.leg, 3)])

    html = _page_client(login_as, scene.member_a).get("/coop/pick-list").get_data(as_text=True)

    assert "2 kg leg" in html and ">5<" in html and "data-print" in html  # site.js prints


def test_packing_slips_have_address_items_cooperative_and_qr(scene, login_as, client):
    order = scene.paid_order([(scene.leg, 2)])
    shipment_id = order["shipments"][scene.coop_a]
    page = _page_client(login_as, scene.member_a)

    a4 = page.get(f"/coop/slips?ids={shipment_id}").get_data(as_text=True)
    label = page.get(f"/coop/slips?ids={shipment_id}&size=label").get_data(as_text=True)

    for text in (order["number"], "王芳", "13800138000", "人民路 8 号", "尉犁羊肉合作社", "<svg"):
        assert text in a4
    assert "fulfilment/page-a4.css" in a4 and "fulfilment/page-label.css" in label
    sheets = [page.get(f"/fulfilment-static/fulfilment/page-{s}.css") for s in ("a4", "label")]
    assert "size: A4" in sheets[0].get_data(as_text=True)
    assert "size: 100mm 150mm" in sheets[1].get_data(as_text=True)
    assert page.get(f"/coop/slips?ids={order['shipments'][scene.coop_a]}").status_code == 200
    assert (
        _page_client(login_as, scene.member_b).get(f"/coop/slips?ids={shipment_id}").status_code
        == 404
    )


def test_trace_page_shows_origin_and_no_personal_data(scene, login_as, client, app):
    from orders.fulfilment.services import trace_token

    order = scene.paid_order([(scene.leg, 1), (scene.pear, 1)])
    login_as(scene.member_a).post(
        f"/fulfilment/shipments/{order['shipments'][scene.coop_a]}/ship",
        {"carrier": "顺丰速运", "tracking_number": "SF1"},
    )
    with app.test_request_context():
        token = trace_token(order["id"])
    slip = _page_client(login_as, scene.member_a).get(
        f"/coop/slips?ids={order['shipments'][scene.coop_a]}"
    )
    assert f"/trace/{token}" in slip.get_data(as_text=True)

    response = client.get(f"/trace/{token}")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("尉犁羊肉合作社", "新疆 尉犁县", "羊肉", "库尔勒香梨合作社", "香梨"):
        assert text in html
    for private in ("王芳", "13800138000", "人民路", "库尔勒市 人民路", scene.buyer.email):
        assert private not in html
    assert client.get(f"/trace/{order['id']}").status_code == 404
    assert client.get(f"/trace/{token[:-2]}xx").status_code == 404


def test_buyers_shipments_partial_shows_tracking_and_confirms_receipt(scene, login_as, app):
    from flask import render_template
    from flask_login import login_user

    from orders.models import Order
    from shop.extensions import db
    from shop.models import User

    order = scene.paid_order([(scene.leg, 1)])
    login_as(scene.member_a).post(
        f"/fulfilment/shipments/{order['shipments'][scene.coop_a]}/ship",
        {"carrier": "顺丰速运", "tracking_number": "SF31415"},
    )
    with app.test_request_context():
        login_user(db.session.get(User, scene.buyer.id))
        html = render_template(
            "fulfilment/_shipments.html", order=db.session.get(Order, order["id"])
        )
    assert "SF31415" in html and "confirm-receipt" in html

    page = _page_client(login_as, scene.buyer)
    token = _csrf(page.get("/cart").get_data(as_text=True))
    response = page.post(f"/orders/{order['id']}/confirm-receipt", data={"csrf_token": token})

    assert response.status_code == 302 and response.location.endswith(f"/orders/{order['id']}")
    assert scene.order_status(order["id"]) == "delivered"


def test_admin_dashboard_shows_every_cooperative_and_filters_by_session(scene, login_as):
    from tests.orders.fulfilment.conftest import make_live_session

    session_id = make_live_session(scene.app, scene.host.id, title="香梨直播")
    live = scene.paid_order([(scene.pear, 1)], live_session_id=session_id)
    other = scene.paid_order([(scene.leg, 1)])
    page = _page_client(login_as, scene.admin)

    everything = page.get("/coop").get_data(as_text=True)
    by_session = page.get(f"/coop?live_session_id={session_id}").get_data(as_text=True)
    one_coop = page.get(f"/coop?cooperative_id={scene.coop_a}").get_data(as_text=True)

    assert live["number"] in everything and other["number"] in everything
    assert "香梨直播" in everything
    assert live["number"] in by_session and other["number"] not in by_session
    assert other["number"] in one_coop and live["number"] not in one_coop
