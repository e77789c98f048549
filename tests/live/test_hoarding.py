"""No hoarding: per-buyer limits bind the cart too, unpaid orders are capped, keys stay in their
session, and a cancel gives the buyer's units under a pin back by itself."""

from __future__ import annotations

from tests.live.conftest import ADDRESS, checkout


def cart_order(api, variant_id: int, quantity: int):
    body = {"items": [{"variant_id": variant_id, "quantity": quantity}], "address": ADDRESS}
    return api.post("/orders", body)


def test_a_pinned_variant_s_limit_binds_cart_checkout_too(live, factory, login_as):
    # given a pin with a per-buyer limit of 2, and a buyer who tapped 1
    live.pin(per_buyer_limit=2)
    buyer = login_as(factory.user("buyer"))
    assert checkout(buyer, live.session_id, live.variant_id).status_code == 201
    # when they try to take 2 more through the cart, at the regular price
    response = cart_order(buyer, live.variant_id, 2)
    # then the cart is refused the same way the tap would be
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "limit_exceeded"
    # but 1 more through the cart is fine, and it counts: the next tap is refused
    assert cart_order(buyer, live.variant_id, 1).status_code == 201
    tap = checkout(buyer, live.session_id, live.variant_id, key="tap-2")
    assert tap.status_code == 409 and tap.get_json()["error"]["code"] == "limit_exceeded"


def test_once_the_pin_ends_the_cart_is_free_again(live, factory, login_as):
    live.pin(per_buyer_limit=1)
    buyer = login_as(factory.user("buyer"))
    assert checkout(buyer, live.session_id, live.variant_id).status_code == 201
    assert live.host_api.delete(f"/live-sessions/{live.session_id}/pins/current").status_code == 204
    assert cart_order(buyer, live.variant_id, 2).status_code == 201


def test_cancelling_gives_the_units_back_to_the_limit(live, factory, login_as):
    # given a buyer at their limit of 2
    live.pin(per_buyer_limit=2)
    buyer = login_as(factory.user("buyer"))
    order = checkout(buyer, live.session_id, live.variant_id, 2).get_json()
    refused = checkout(buyer, live.session_id, live.variant_id, key="tap-2")
    assert refused.get_json()["error"]["code"] == "limit_exceeded"
    # when they cancel, and cancel again
    assert buyer.post(f"/orders/{order['id']}/cancel").get_json()["status"] == "cancelled"
    again = buyer.post(f"/orders/{order['id']}/cancel")
    assert again.status_code in (200, 409)
    # then exactly those 2 units are theirs to take again, no more
    assert checkout(buyer, live.session_id, live.variant_id, 2, key="tap-3").status_code == 201
    over = checkout(buyer, live.session_id, live.variant_id, key="tap-4")
    assert over.get_json()["error"]["code"] == "limit_exceeded"


def test_a_fourth_unpaid_order_is_refused_until_one_is_paid(live, factory, login_as):
    live.pin()
    buyer = login_as(factory.user("buyer"))
    orders = [checkout(buyer, live.session_id, live.variant_id, key=f"k{i}") for i in range(3)]
    assert [o.status_code for o in orders] == [201] * 3
    fourth = checkout(buyer, live.session_id, live.variant_id, key="k4")
    assert fourth.status_code == 409 and fourth.get_json()["error"]["code"] == "too_many_unpaid"
    cart = cart_order(buyer, live.variant_id, 1)
    assert cart.status_code == 409 and cart.get_json()["error"]["code"] == "too_many_unpaid"
    # paying one makes room
    paid = buyer.post(f"/payments/demo/{orders[0].get_json()['id']}/confirm")
    assert paid.status_code == 200
    assert checkout(buyer, live.session_id, live.variant_id, key="k4").status_code == 201


def test_an_idempotency_key_used_in_another_session_is_refused(live, factory, login_as, scheduled):
    # given a tap in this session with key "same"
    live.pin()
    buyer = login_as(factory.user("buyer"))
    assert checkout(buyer, live.session_id, live.variant_id, key="same").status_code == 201
    # and a second live session pinning the same product
    other = live.host_api.post("/live-sessions", {"title": "第二场"}).get_json()["id"]
    live.host_api.post(f"/live-sessions/{other}/start")
    body = {"product_id": live.product["id"], "live_prices": {str(live.variant_id): 6800}}
    assert live.host_api.post(f"/live-sessions/{other}/pins", body).status_code == 201
    # when the buyer taps there with the same key
    response = checkout(buyer, other, live.variant_id, key="same")
    # then it is refused, and no second order exists
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert len(buyer.get("/orders").get_json()["items"]) == 1


def test_lines_for_one_variant_are_capped_after_merging(live, factory, login_as):
    buyer = login_as(factory.user("buyer"))
    lines = [{"variant_id": live.variant_id, "quantity": 60}] * 2
    response = buyer.post("/orders", {"items": lines, "address": ADDRESS})
    assert response.status_code == 422
    assert str(live.variant_id) in response.get_json()["error"]["fields"]["items"]
    assert buyer.get("/orders").get_json()["items"] == []


def test_a_live_price_above_a_lowered_regular_price_is_not_charged(live, factory, login_as):
    # given a pin at ¥68.00, then the cooperative lowers the regular price to ¥60.00
    live.pin(live_price=6800)
    admin = login_as(factory.user("admin"))
    assert admin.patch(f"/variants/{live.variant_id}", {"price": 6000}).status_code == 200
    buyer = login_as(factory.user("buyer"))
    # when a viewer taps, they pay the lower of the two
    order = checkout(buyer, live.session_id, live.variant_id).get_json()
    assert order["total"] == 6000
