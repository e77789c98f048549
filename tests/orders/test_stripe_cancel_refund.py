"""Stripe after the fact: a cancelled order's intent is cancelled at Stripe, and refunds made in
Stripe's dashboard (`charge.refunded`) reach the order once, whatever order they arrive in.

The real `stripe` library talks to the local stand-in; deliveries are signed as Stripe signs them.
"""

from __future__ import annotations

import re

import pytest

from tests.orders.stripe_stub import StripeStub, event
from tests.orders.test_stripe import deliver, intent_of, start

pytestmark = pytest.mark.stripe


def paid_order(shop, stripe_stub, client) -> tuple[dict, str]:
    """Two legs (¥176.00) paid through Stripe, the webhook applied; (order, intent id)."""
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    intent = stripe_stub.set_status(intent_id, "succeeded")
    assert deliver(client, event("payment_intent.succeeded", intent)).get_json()["result"] == "paid"
    return order, intent_id


def refunded_in_dashboard(client, stripe_stub, intent_id: str, amount: int | None = None) -> str:
    """Someone refunds in Stripe's dashboard; Stripe then delivers `charge.refunded`."""
    charge = stripe_stub.dashboard_refund(intent_id, amount)
    response = deliver(client, event("charge.refunded", charge))
    assert response.status_code == 200
    return response.get_json()["result"]


def timeline(shop, order: dict) -> str:
    return shop.api.client.get(f"/orders/{order['id']}").get_data(as_text=True)


# --- cancelling an unpaid order cancels its intent --------------------------------------------


def test_a_buyer_cancelling_an_unpaid_order_cancels_its_intent(shop, stripe_stub):
    # given an unpaid order whose payment has started at Stripe
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    # when the buyer cancels it
    response = shop.api.post(f"/orders/{order['id']}/cancel")
    # then the order is cancelled, its stock back, and the intent cancelled at Stripe
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert shop.stock(shop.leg) == 10
    assert stripe_stub.cancels == [(intent_id, "canceled")]
    assert stripe_stub.intents[intent_id]["status"] == "canceled"
    assert shop.events(order["id"])[-2:] == ["cancelled_by_buyer", "stripe_payment_cancelled"]
    assert "这笔支付已在 Stripe 取消，无法再付款" in timeline(shop, order)
    # and the order cannot be paid any more
    assert shop.api.post(f"/orders/{order['id']}/payment").status_code == 409


def test_an_admin_cancel_and_an_expiry_cancel_the_intent_too(shop, stripe_stub, factory, login_as):
    by_admin, expiring = shop.order(), shop.order()
    admin_intent = intent_of(stripe_stub, start(shop, by_admin))
    expiring_intent = intent_of(stripe_stub, start(shop, expiring))

    admin = login_as(factory.user("admin"))
    assert admin.post(f"/orders/{by_admin['id']}/cancel").status_code == 200
    assert shop.expire(expiring["id"]) == 1

    assert sorted(stripe_stub.cancels) == sorted(
        [(admin_intent, "canceled"), (expiring_intent, "canceled")]
    )
    assert shop.events(by_admin["id"])[-2:] == ["cancelled_by_admin", "stripe_payment_cancelled"]
    assert shop.events(expiring["id"])[-2:] == ["expired", "stripe_payment_cancelled"]


def test_an_order_cancelled_before_paying_started_asks_nothing_of_stripe(shop, stripe_stub):
    order = shop.order()
    assert shop.api.post(f"/orders/{order['id']}/cancel").status_code == 200
    assert stripe_stub.cancels == [] and stripe_stub.requests == []
    assert shop.events(order["id"]) == ["placed", "cancelled_by_buyer"]


@pytest.mark.parametrize("outage", ["500s", "unreachable"])
def test_a_stripe_outage_still_cancels_the_order(shop, stripe_stub, app, outage):
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    if outage == "500s":
        stripe_stub.mode = "down"
    else:
        app.config["STRIPE_API_BASE"] = StripeStub.unreachable_url()

    response = shop.api.post(f"/orders/{order['id']}/cancel")

    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert shop.stock(shop.leg) == 10
    assert stripe_stub.intents[intent_id]["status"] == "requires_payment_method"
    assert shop.events(order["id"])[-2:] == ["cancelled_by_buyer", "stripe_payment_not_cancelled"]
    assert "未能在 Stripe 取消这笔支付" in timeline(shop, order)


# --- refunds made in Stripe's dashboard -------------------------------------------------------


def test_a_full_dashboard_refund_refunds_the_order_once(shop, stripe_stub, client):
    # given a paid order for ¥176.00 waiting to be packed
    order, intent_id = paid_order(shop, stripe_stub, client)
    assert shop.stock(shop.leg) == 8
    # when someone refunds all of it in Stripe's dashboard
    charge = stripe_stub.dashboard_refund(intent_id)
    payload = event("charge.refunded", charge)
    assert deliver(client, payload).get_json()["result"] == "refunded"
    # then the order is refunded like our own refund: shipment withdrawn, stock back
    refunded = shop.api.get(f"/orders/{order['id']}").get_json()
    assert refunded["status"] == "refunded"
    assert [s["status"] for s in refunded["shipments"]] == ["cancelled"]
    assert shop.stock(shop.leg) == 10
    assert "已通过 Stripe 全额退款" in timeline(shop, order)
    assert refunded_shown(shop, order) == "¥176.00"
    # and a replay, or another event with the same total, changes nothing
    assert deliver(client, payload).get_json()["result"] == "duplicate"
    assert deliver(client, event("charge.refunded", charge)).get_json()["result"] == "no_change"
    assert shop.events(order["id"]).count("stripe_refunded") == 1
    assert shop.stock(shop.leg) == 10


def test_partial_dashboard_refunds_count_the_running_total(shop, stripe_stub, client):
    order, intent_id = paid_order(shop, stripe_stub, client)
    first = stripe_stub.dashboard_refund(intent_id, 3000)
    result = deliver(client, event("charge.refunded", first)).get_json()["result"]
    assert result == "partly_refunded"
    assert refunded_in_dashboard(client, stripe_stub, intent_id, 2000) == "partly_refunded"
    # the first event again (a new id, delivered late) is an older total: nothing moves back
    assert deliver(client, event("charge.refunded", first)).get_json()["result"] == "no_change"

    assert shop.status(order["id"]) == "paid" and shop.stock(shop.leg) == 8
    assert refunded_shown(shop, order) == "¥50.00"
    assert shop.events(order["id"]).count("stripe_partly_refunded") == 2
    assert "已通过 Stripe 部分退款" in timeline(shop, order)


def test_our_refund_after_a_dashboard_refund_is_not_counted_twice(
    shop, stripe_stub, client, factory, login_as
):
    # given ¥30.00 of a ¥176.00 order refunded in the dashboard
    order, intent_id = paid_order(shop, stripe_stub, client)
    assert refunded_in_dashboard(client, stripe_stub, intent_id, 3000) == "partly_refunded"
    # when the service centre refunds the order through Farmlive
    admin = login_as(factory.user("admin"))
    assert admin.post(f"/orders/{order['id']}/cancel").get_json()["status"] == "refunded"
    # then Stripe refunded only what was left, and the order shows the whole total once
    assert [r["amount"] for r in stripe_stub.refunds] == [3000, 14600]
    assert refunded_shown(shop, order) == "¥176.00"
    # and Stripe's echo of our own refund (running total ¥176.00) adds nothing
    echo = event("charge.refunded", stripe_stub.charge_of(intent_id))
    assert deliver(client, echo).get_json()["result"] == "no_change"
    assert refunded_shown(shop, order) == "¥176.00"
    assert shop.events(order["id"])[-3:] == [
        "stripe_partly_refunded",
        "refund_requested",
        "refunded_by_admin",
    ]
    assert shop.stock(shop.leg) == 10


def test_the_echo_of_our_own_refund_changes_nothing(shop, stripe_stub, client):
    order, intent_id = paid_order(shop, stripe_stub, client)
    assert shop.api.post(f"/orders/{order['id']}/cancel").get_json()["status"] == "refunded"

    echo = event("charge.refunded", stripe_stub.charge_of(intent_id))
    assert deliver(client, echo).get_json()["result"] == "no_change"

    assert refunded_shown(shop, order) == "¥176.00"
    assert shop.events(order["id"])[-1] == "refunded_by_buyer"
    assert shop.stock(shop.leg) == 10


def test_a_refund_that_overtakes_the_payment_news_lands_on_a_paid_order(shop, stripe_stub, client):
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    succeeded = stripe_stub.set_status(intent_id, "succeeded")

    assert refunded_in_dashboard(client, stripe_stub, intent_id, 1000) == "partly_refunded"
    assert deliver(client, event("payment_intent.succeeded", succeeded)).status_code == 200

    assert shop.status(order["id"]) == "paid"
    assert shop.events(order["id"])[-2:] == ["paid", "stripe_partly_refunded"]


@pytest.mark.parametrize(
    "charge",
    [
        {"id": "ch_x", "payment_intent": None, "amount_refunded": 100},
        {"id": "ch_x", "payment_intent": "pi_nobody", "amount_refunded": "100"},
        {"id": "ch_x", "payment_intent": "pi_nobody", "amount_refunded": True},
        {"id": ["ch_x"], "payment_intent": "pi_nobody", "amount_refunded": 100},
        {"id": "ch_x", "payment_intent": "pi_nobody", "amount_refunded": 10**40},
    ],
)
def test_odd_refund_events_are_acknowledged_and_change_nothing(shop, stripe_stub, client, charge):
    order, _ = paid_order(shop, stripe_stub, client)
    response = deliver(client, event("charge.refunded", charge))
    assert response.status_code == 200
    assert response.get_json()["result"] in ("ignored", "unknown_intent")
    assert shop.status(order["id"]) == "paid"


def test_a_huge_refund_total_is_capped_at_the_order_total(shop, stripe_stub, client):
    order, intent_id = paid_order(shop, stripe_stub, client)
    charge = {**stripe_stub.dashboard_refund(intent_id), "amount_refunded": 10**40}
    assert deliver(client, event("charge.refunded", charge)).get_json()["result"] == "refunded"
    assert refunded_shown(shop, order) == "¥176.00"


def refunded_shown(shop, order: dict) -> str | None:
    """The "Refunded" line of the order page's totals, as the buyer reads it."""
    found = re.search(r'<th colspan="2">已退款</th><th>([^<]+)</th>', timeline(shop, order))
    return found.group(1) if found else None
