"""The order rows of API.md through HTTP, with the demo provider: checkout, read, pay, cancel."""

from __future__ import annotations

from shop.extensions import db
from shop.models import User
from tests.orders.conftest import ADDRESS

ORDER_KEYS = {
    "id",
    "number",
    "refund_status",
    "refunded_amount",
    "status",
    "items",
    "total",
    "currency",
    "live_session_id",
    "created_at",
    "paid_at",
    "expires_at",
    "shipments",
}


def test_cart_checkout_holds_stock_at_regular_prices(shop, app):
    # given a buyer and a product with 10 legs and 2 lambs in stock
    # when they check out two legs and a lamb
    order = shop.order([(shop.leg, 2), (shop.lamb, 1)])
    # then the order is unpaid, priced by the server, and holds the stock
    assert set(order) == ORDER_KEYS
    assert order["status"] == "pending_payment"
    assert order["total"] == 2 * 8800 + 168000
    assert order["currency"] == "CNY"
    assert order["number"].startswith("FL") and order["expires_at"] and order["paid_at"] is None
    assert {(i["variant_id"], i["unit_price"], i["quantity"]) for i in order["items"]} == {
        (shop.leg, 8800, 2),
        (shop.lamb, 168000, 1),
    }
    assert set(order["items"][0]) == {
        "variant_id",
        "product_id",
        "name",
        "unit_price",
        "quantity",
        "cooperative_id",
    }
    assert shop.stock(shop.leg) == 8 and shop.stock(shop.lamb) == 1
    # and the address is remembered for next time
    with app.app_context():
        assert db.session.get(User, shop.buyer.id).saved_address == ADDRESS


def test_client_prices_are_ignored(shop):
    body = {"items": [{"variant_id": shop.leg, "quantity": 1, "unit_price": 1}], "address": ADDRESS}
    response = shop.api.post("/orders", body)
    assert response.status_code == 201
    assert response.get_json()["total"] == 8800


def test_an_order_is_all_or_nothing(shop):
    # when one line cannot be had
    response = shop.api.post(
        "/orders",
        {
            "items": [
                {"variant_id": shop.leg, "quantity": 3},
                {"variant_id": shop.lamb, "quantity": 3},
            ],
            "address": ADDRESS,
        },
    )
    # then nothing is taken
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "sold_out"
    assert shop.stock(shop.leg) == 10 and shop.stock(shop.lamb) == 2


def test_bad_bodies_get_422_with_fields_and_change_nothing(shop):
    cases = [
        ({"items": [], "address": ADDRESS}, "items"),
        ({"items": [{"variant_id": shop.leg, "quantity": 0}], "address": ADDRESS}, "items"),
        ({"items": [{"variant_id": shop.leg, "quantity": "2"}], "address": ADDRESS}, "items"),
        ({"items": [{"variant_id": shop.leg, "quantity": 1}]}, "address"),
        (
            {
                "items": [{"variant_id": shop.leg, "quantity": 1}],
                "address": {**ADDRESS, "phone": "call me"},
            },
            "address",
        ),
        (
            {
                "items": [{"variant_id": shop.leg, "quantity": 1}],
                "address": {**ADDRESS, "detail": ""},
            },
            "address",
        ),
        ({"items": [{"variant_id": 999999, "quantity": 1}], "address": ADDRESS}, "variant_id"),
    ]
    for body, field in cases:
        response = shop.api.post("/orders", body)
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["error"]["fields"], response.get_json()
    assert shop.stock(shop.leg) == 10
    assert shop.api.get("/orders").get_json()["items"] == []


def test_logged_out_checkout_is_401(shop, new_api):
    response = new_api().post(
        "/orders", {"items": [{"variant_id": shop.leg, "quantity": 1}], "address": ADDRESS}
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_buyers_see_their_own_orders_admins_all(shop, factory, login_as):
    mine = shop.order()
    other_buyer = login_as(factory.user("buyer"))
    theirs = shop.order(api=other_buyer)
    admin = login_as(factory.user("admin"))

    assert [o["id"] for o in shop.api.get("/orders").get_json()["items"]] == [mine["id"]]
    assert shop.api.get(f"/orders/{mine['id']}").get_json() == mine
    assert shop.api.get(f"/orders/{theirs['id']}").status_code == 404
    assert {o["id"] for o in admin.get("/orders").get_json()["items"]} == {mine["id"], theirs["id"]}
    found = admin.get(f"/orders?number={theirs['number']}").get_json()["items"]
    assert [o["id"] for o in found] == [theirs["id"]]
    assert admin.get(f"/orders/{theirs['id']}").status_code == 200
    assert shop.api.get("/orders/424242").status_code == 404


def test_demo_payment_marks_paid_with_one_shipment_per_cooperative(shop, factory):
    other_coop = factory.product(variants=[{"name": "1 kg", "price": 3000, "stock": 5}])
    order = shop.order([(shop.leg, 1), (other_coop["variant_ids"][0], 2)])

    start = shop.api.post(f"/orders/{order['id']}/payment")
    assert start.status_code == 200
    assert start.get_json() == {
        "provider": "demo",
        "client_secret": start.get_json()["client_secret"],
        "publishable_key": None,
    }
    assert shop.api.post(f"/orders/{order['id']}/payment").get_json() == start.get_json()

    paid = shop.api.post(f"/payments/demo/{order['id']}/confirm")
    assert paid.status_code == 200
    body = paid.get_json()
    assert body["status"] == "paid" and body["paid_at"]
    assert sorted(s["cooperative_id"] for s in body["shipments"]) == sorted(
        [shop.product["cooperative_id"], other_coop["cooperative_id"]]
    )
    assert all(s["status"] == "pending" and s["items"] for s in body["shipments"])
    # confirming again changes nothing; stock stays sold
    assert shop.api.post(f"/payments/demo/{order['id']}/confirm").get_json() == body
    assert shop.stock(shop.leg) == 9
    assert shop.events(order["id"]) == ["placed", "payment_started", "paid"]


def test_only_the_buyer_pays(shop, factory, login_as):
    order = shop.order()
    stranger = login_as(factory.user("buyer"))
    assert stranger.post(f"/payments/demo/{order['id']}/confirm").status_code == 404
    assert stranger.post(f"/orders/{order['id']}/payment").status_code == 404
    assert shop.status(order["id"]) == "pending_payment"


def test_cancelling_an_unpaid_order_returns_its_stock_once(shop):
    order = shop.order([(shop.leg, 3)])
    response = shop.api.post(f"/orders/{order['id']}/cancel")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert shop.stock(shop.leg) == 10
    # a second tap changes nothing
    assert shop.api.post(f"/orders/{order['id']}/cancel").get_json()["status"] == "cancelled"
    assert shop.stock(shop.leg) == 10
    # and a cancelled order cannot be paid
    confirm = shop.api.post(f"/payments/demo/{order['id']}/confirm")
    assert confirm.status_code == 409
    assert shop.stock(shop.leg) == 10


def test_cancelling_a_paid_order_refunds_and_restocks(shop):
    order = shop.order([(shop.leg, 2)])
    shop.api.post(f"/payments/demo/{order['id']}/confirm")
    response = shop.api.post(f"/orders/{order['id']}/cancel")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "refunded"
    assert [s["status"] for s in body["shipments"]] == ["cancelled"]
    assert shop.stock(shop.leg) == 10
    assert shop.events(order["id"])[-1] == "refunded_by_buyer"
    # refunding twice refunds once
    assert shop.api.post(f"/orders/{order['id']}/cancel").get_json()["status"] == "refunded"
    assert shop.stock(shop.leg) == 10


def test_a_buyer_cannot_refund_after_shipping_but_an_admin_can(shop, app, factory, login_as):
    from orders.models import Order, ShipmentStatus

    order = shop.order([(shop.leg, 2)])
    shop.api.post(f"/payments/demo/{order['id']}/confirm")
    with app.app_context():
        db.session.get(Order, order["id"]).shipments[0].status = ShipmentStatus.SHIPPED
        db.session.get(Order, order["id"]).status = "shipped"
        db.session.commit()
    refused = shop.api.post(f"/orders/{order['id']}/cancel")
    assert refused.status_code == 409
    assert shop.status(order["id"]) == "shipped"

    admin = login_as(factory.user("admin"))
    refunded = admin.post(f"/orders/{order['id']}/cancel")
    assert refunded.status_code == 200 and refunded.get_json()["status"] == "refunded"
    assert shop.stock(shop.leg) == 8  # the goods left the farm: nothing comes back
    assert shop.events(order["id"])[-1] == "refunded_by_admin"


def test_demo_confirm_is_refused_when_stripe_is_the_provider(shop, app):
    order = shop.order()
    app.config["PAYMENT_PROVIDER"] = "stripe"
    response = shop.api.post(f"/payments/demo/{order['id']}/confirm")
    assert response.status_code == 404
    assert shop.status(order["id"]) == "pending_payment"


def test_openapi_lists_the_order_rows(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/payment",
        "/api/v1/orders/{order_id}/cancel",
        "/api/v1/payments/demo/{order_id}/confirm",
    ):
        assert path in paths


def test_a_cancelled_order_cannot_start_a_payment(shop):
    order = shop.order()
    shop.api.post(f"/orders/{order['id']}/cancel")
    response = shop.api.post(f"/orders/{order['id']}/payment")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "invalid_transition"


def test_an_admin_cancels_any_unpaid_order(shop, factory, login_as):
    order = shop.order([(shop.lamb, 2)])
    admin = login_as(factory.user("admin"))
    response = admin.post(f"/orders/{order['id']}/cancel")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert shop.stock(shop.lamb) == 2
    assert shop.events(order["id"])[-1] == "cancelled_by_admin"
