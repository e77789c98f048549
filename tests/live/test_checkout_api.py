"""Instant checkout: live price from the pin, idempotent taps, limits, clear 409s."""

from __future__ import annotations

from tests.live.conftest import ADDRESS, checkout


def test_checkout_charges_the_pins_live_price(live, factory, login_as):
    live.pin(live_price=6800)
    buyer = login_as(factory.user("buyer"))

    response = buyer.post(
        f"/live-sessions/{live.session_id}/checkout",
        {"variant_id": live.variant_id, "quantity": 2, "address": ADDRESS, "unit_price": 1},
        headers={"Idempotency-Key": "tap-a"},
    )

    assert response.status_code == 201, response.get_json()
    order = response.get_json()
    assert order["status"] == "pending_payment" and order["live_session_id"] == live.session_id
    assert order["items"][0]["unit_price"] == 6800 and order["total"] == 13600
    stock = buyer.get(f"/products/{live.product['id']}").get_json()["variants"][0]["stock"]
    assert stock == 8


def test_same_key_same_order_and_missing_key_is_400(live, factory, login_as):
    live.pin()
    buyer = login_as(factory.user("buyer"))

    first = checkout(buyer, live.session_id, live.variant_id, key="double-tap")
    again = checkout(buyer, live.session_id, live.variant_id, key="double-tap")
    assert first.status_code == 201 and again.status_code in (200, 201)
    assert again.get_json() == first.get_json()

    missing = buyer.post(
        f"/live-sessions/{live.session_id}/checkout",
        {"variant_id": live.variant_id, "quantity": 1, "address": ADDRESS},
    )
    assert missing.status_code == 400
    assert missing.get_json()["error"]["code"] == "idempotency_key_required"
    stock = buyer.get(f"/products/{live.product['id']}").get_json()["variants"][0]["stock"]
    assert stock == 9


def test_not_pinned_and_not_live_are_409(live, factory, login_as):
    buyer = login_as(factory.user("buyer"))
    other = factory.product()["variant_ids"][0]

    nothing = checkout(buyer, live.session_id, live.variant_id, key="k1")
    assert nothing.status_code == 409 and nothing.get_json()["error"]["code"] == "not_pinned"
    live.pin()
    wrong = checkout(buyer, live.session_id, other, key="k2")
    assert wrong.status_code == 409 and wrong.get_json()["error"]["code"] == "not_pinned"
    live.host_api.post(f"/live-sessions/{live.session_id}/end")
    ended = checkout(buyer, live.session_id, live.variant_id, key="k3")
    assert ended.status_code == 409 and ended.get_json()["error"]["code"] == "not_live"


def test_per_buyer_limit_and_sold_out(live, factory, login_as):
    live.pin(per_buyer_limit=3)
    buyer = login_as(factory.user("buyer"))

    assert checkout(buyer, live.session_id, live.variant_id, 2, key="a").status_code == 201
    over = checkout(buyer, live.session_id, live.variant_id, 2, key="b")
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "limit_exceeded"
    assert checkout(buyer, live.session_id, live.variant_id, 1, key="c").status_code == 201
    too_many = checkout(buyer, live.session_id, live.variant_id, 4, key="d")
    assert too_many.get_json()["error"]["code"] == "limit_exceeded"

    others = [login_as(factory.user("buyer")) for _ in range(3)]
    results = [checkout(o, live.session_id, live.variant_id, 3, key="x") for o in others]
    assert [r.status_code for r in results] == [201, 201, 409]
    assert results[2].get_json()["error"]["code"] == "sold_out"


def test_cancelled_order_gives_units_back_to_the_limit(live, factory, login_as, app):
    live.pin(per_buyer_limit=1)
    user = factory.user("buyer")
    buyer = login_as(user)
    order_id = checkout(buyer, live.session_id, live.variant_id, key="a").get_json()["id"]
    assert checkout(buyer, live.session_id, live.variant_id, key="b").status_code == 409

    from orders.services import cancel_unpaid

    with app.test_request_context():
        cancel_unpaid(order_id, actor_id=user.id, reason="cancelled_by_buyer")
    assert checkout(buyer, live.session_id, live.variant_id, key="c").status_code == 201


def test_checkout_needs_login_and_valid_fields(live, factory, login_as, api):
    live.pin()
    assert checkout(api, live.session_id, live.variant_id).status_code == 401
    buyer = login_as(factory.user("buyer"))
    response = buyer.post(
        f"/live-sessions/{live.session_id}/checkout",
        {"variant_id": live.variant_id, "quantity": 0, "address": {"name": ""}},
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 422
    assert {"quantity", "address"} <= set(response.get_json()["error"]["fields"])


def test_a_retried_winning_tap_gets_its_order_after_the_sell_out(live, factory, login_as):
    # The flash-sale case: the tap won the last units, its answer was lost, the phone retries.
    live.pin(per_buyer_limit=10)
    buyer = login_as(factory.user("buyer"))
    won = checkout(buyer, live.session_id, live.variant_id, 10, key="lost-answer")
    assert won.status_code == 201

    late = checkout(login_as(factory.user("buyer")), live.session_id, live.variant_id, key="x")
    retry = checkout(buyer, live.session_id, live.variant_id, 10, key="lost-answer")

    assert late.status_code == 409 and late.get_json()["error"]["code"] == "sold_out"
    assert retry.status_code == 200 and retry.get_json() == won.get_json()


def test_a_retried_tap_gets_its_order_after_the_pin_ended(live, factory, login_as):
    live.pin()
    buyer = login_as(factory.user("buyer"))
    won = checkout(buyer, live.session_id, live.variant_id, key="slow-network")
    live.host_api.delete(f"/live-sessions/{live.session_id}/pins/current")

    retry = checkout(buyer, live.session_id, live.variant_id, key="slow-network")
    fresh = checkout(buyer, live.session_id, live.variant_id, key="new-tap")

    assert retry.status_code == 200 and retry.get_json()["id"] == won.get_json()["id"]
    assert fresh.status_code == 409 and fresh.get_json()["error"]["code"] == "not_pinned"


def test_units_given_back_sell_again_at_once_after_a_sell_out(live, factory, login_as, app):
    # A sold-out variant is refused without a transaction for a moment (SOLD_OUT_MEMO_SECONDS),
    # but stock coming back in this process ends that at once.
    assert app.config["SOLD_OUT_MEMO_SECONDS"] > 0
    live.pin(per_buyer_limit=10)
    first = login_as(factory.user("buyer"))
    order = checkout(first, live.session_id, live.variant_id, 10, key="all").get_json()
    second = login_as(factory.user("buyer"))
    refused = checkout(second, live.session_id, live.variant_id, key="too-late")
    assert refused.get_json()["error"]["code"] == "sold_out"

    assert first.post(f"/orders/{order['id']}/cancel").status_code == 200
    again = checkout(second, live.session_id, live.variant_id, key="after-cancel")

    assert again.status_code == 201, again.get_json()
