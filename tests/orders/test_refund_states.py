"""Refunds are a state, payments must match their order, disputes reach the admin.

The real `stripe` library talks to the local stand-in; deliveries are signed as Stripe signs them.
"""

from __future__ import annotations

import pytest

from tests.orders.stripe_stub import event
from tests.orders.test_stripe import deliver, intent_of, start
from tests.orders.test_stripe_cancel_refund import paid_order

pytestmark = pytest.mark.stripe


def order_json(shop, order: dict, api=None) -> dict:
    return (api or shop.api).get(f"/orders/{order['id']}").get_json()


def shipment_of(shop, order: dict) -> int:
    return order_json(shop, order)["shipments"][0]["id"]


def attention(shop, order: dict) -> str | None:
    from orders.models import Order
    from shop.extensions import db

    with shop.app.app_context():
        return db.session.get(Order, order["id"]).attention


def test_a_pending_refund_holds_shipping_until_stripe_says_it_succeeded(
    shop, stripe_stub, client, factory, login_as
):
    # given a paid order whose refund Stripe accepts but has not completed yet
    order, _intent = paid_order(shop, stripe_stub, client)
    stripe_stub.refund_outcome = "pending"
    coop = login_as(factory.user("coop", cooperative_id=shop.product["cooperative_id"]))
    # when the buyer cancels it
    answer = shop.api.post(f"/orders/{order['id']}/cancel").get_json()
    # then the order is still paid, with its refund pending, and nothing is back on the shelf
    assert (answer["status"], answer["refund_status"]) == ("paid", "pending")
    assert shop.stock(shop.leg) == 8
    # and the cooperative cannot ship it meanwhile, nor can a second cancel refund again
    shipped = coop.post(
        f"/fulfilment/shipments/{shipment_of(shop, order)}/ship",
        {"carrier": "顺丰", "tracking_number": "SF1"},
    )
    assert (
        shipped.status_code == 409 and shipped.get_json()["error"]["code"] == "invalid_transition"
    )
    again = shop.api.post(f"/orders/{order['id']}/cancel")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invalid_transition"
    assert len(stripe_stub.refunds) == 1
    # when Stripe reports the refund succeeded
    refund = stripe_stub.settle_refund(stripe_stub.refunds[0]["id"], "succeeded")
    result = deliver(client, event("refund.updated", refund)).get_json()["result"]
    # then the order is refunded once, its stock back, its shipment withdrawn
    assert result == "refund_succeeded"
    answer = order_json(shop, order)
    assert (answer["status"], answer["refund_status"]) == ("refunded", "succeeded")
    assert answer["shipments"][0]["status"] == "cancelled"
    assert shop.stock(shop.leg) == 10
    assert shop.events(order["id"])[-3:] == [
        "refund_requested",
        "refund_pending",
        "refunded_by_buyer",
    ]
    # and the same news again changes nothing
    assert deliver(client, event("refund.updated", refund)).get_json()["result"] == (
        "refund_succeeded"
    )
    assert shop.stock(shop.leg) == 10
    assert shop.events(order["id"])[-1] == "refunded_by_buyer"


def test_a_failed_refund_is_shown_as_failed_and_the_admin_can_try_again(
    shop, stripe_stub, client, factory, login_as
):
    # given a paid order whose refund is pending at Stripe
    order, _intent = paid_order(shop, stripe_stub, client)
    stripe_stub.refund_outcome = "pending"
    shop.api.post(f"/orders/{order['id']}/cancel")
    # when Stripe reports that the refund failed
    refund = stripe_stub.settle_refund(stripe_stub.refunds[0]["id"], "failed")
    assert deliver(client, event("refund.failed", refund)).get_json()["result"] == "refund_failed"
    # then the buyer sees a paid order whose refund failed, never "refunded"
    answer = order_json(shop, order)
    assert (answer["status"], answer["refund_status"]) == ("paid", "failed")
    page = shop.api.client.get(f"/orders/{order['id']}").get_data(as_text=True)
    assert 'data-refund-status="failed"' in page and "退款失败" in page
    assert shop.stock(shop.leg) == 8
    # and the admin sees it flagged, and a new refund goes through
    assert attention(shop, order) == "refund_failed"
    admin = login_as(factory.user("admin"))
    assert "order-attention" in admin.client.get(f"/orders/{order['id']}").get_data(as_text=True)
    stripe_stub.refund_outcome = "succeeded"
    answer = admin.post(f"/orders/{order['id']}/cancel").get_json()
    assert (answer["status"], answer["refund_status"]) == ("refunded", "succeeded")
    assert [r["status"] for r in stripe_stub.refunds] == ["failed", "succeeded"]
    assert attention(shop, order) is None
    assert shop.stock(shop.leg) == 10


def test_a_refund_that_stripe_cannot_be_reached_for_is_recorded_as_failed(
    shop, stripe_stub, client
):
    # given a paid order, and Stripe down
    order, _intent = paid_order(shop, stripe_stub, client)
    stripe_stub.mode = "down"
    # when the buyer cancels it
    response = shop.api.post(f"/orders/{order['id']}/cancel")
    # then they are told to try again, and the order says the refund failed (not pending forever)
    assert response.status_code == 503
    answer = order_json(shop, order)
    assert (answer["status"], answer["refund_status"]) == ("paid", "failed")
    # and once Stripe is back, cancelling again refunds it
    stripe_stub.mode = "ok"
    answer = shop.api.post(f"/orders/{order['id']}/cancel").get_json()
    assert (answer["status"], answer["refund_status"]) == ("refunded", "succeeded")
    assert shop.stock(shop.leg) == 10


def test_a_payment_for_another_amount_is_flagged_and_pays_nothing(shop, stripe_stub, client):
    # given an unpaid order for ¥176.00 whose intent at Stripe says ¥1.76
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    stripe_stub.intents[intent_id]["amount"] = 176
    intent = stripe_stub.set_status(intent_id, "succeeded")
    # when the payment's webhook arrives
    result = deliver(client, event("payment_intent.succeeded", intent)).get_json()["result"]
    # then the order is not paid, and the admin is told why
    assert result == "payment_mismatch"
    assert shop.status(order["id"]) == "pending_payment"
    assert attention(shop, order) == "payment_mismatch"
    assert shop.events(order["id"])[-1] == "payment_mismatch"


def test_a_payment_in_another_currency_is_flagged(shop, stripe_stub, client):
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    stripe_stub.intents[intent_id]["currency"] = "usd"
    intent = stripe_stub.set_status(intent_id, "succeeded")
    result = deliver(client, event("payment_intent.succeeded", intent)).get_json()["result"]
    assert result == "payment_mismatch"
    assert shop.status(order["id"]) == "pending_payment"


def test_an_intent_not_stored_on_the_order_pays_nothing(shop, stripe_stub, client):
    # given an order, and a succeeded intent that only names the order in its metadata
    order = shop.order([(shop.leg, 2)])
    stranger = {
        "id": "pi_stranger",
        "object": "payment_intent",
        "amount": order["total"],
        "currency": "cny",
        "status": "succeeded",
        "metadata": {"order_id": str(order["id"])},
    }
    stripe_stub.intents["pi_stranger"] = stranger
    # when its webhook arrives
    result = deliver(client, event("payment_intent.succeeded", stranger)).get_json()["result"]
    # then nothing is paid and the order is flagged
    assert result == "payment_mismatch"
    assert shop.status(order["id"]) == "pending_payment"
    assert attention(shop, order) == "payment_mismatch"


def test_a_dispute_flags_the_order_for_the_admin(shop, stripe_stub, client):
    order, intent_id = paid_order(shop, stripe_stub, client)
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": intent_id,
        "amount": order["total"],
        "reason": "product_not_received",
    }
    assert deliver(client, event("charge.dispute.created", dispute)).get_json()["result"] == (
        "dispute"
    )
    assert attention(shop, order) == "dispute"
    assert shop.status(order["id"]) == "paid"  # nothing else moves
    assert shop.events(order["id"])[-1] == "dispute"


def test_racing_refunds_call_stripe_once(shop, stripe_stub, client, factory, login_as, app):
    # given a paid order and the buyer and an admin refunding it at the same moment
    from concurrent.futures import ThreadPoolExecutor

    order, _intent = paid_order(shop, stripe_stub, client)
    admin = login_as(factory.user("admin"))
    callers = [shop.api, admin, login_as(shop.buyer), login_as(shop.buyer)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda c: c.post(f"/orders/{order['id']}/cancel"), callers))
    # then one refund reached Stripe, and everyone got a refunded order or a clean 409
    assert {a.status_code for a in answers} <= {200, 409}
    assert len(stripe_stub.refunds) == 1
    assert order_json(shop, order)["status"] == "refunded"
    assert shop.stock(shop.leg) == 10


@pytest.mark.only_db("postgresql")
def test_no_database_connection_is_held_while_stripe_is_called(shop, stripe_stub, client, app):
    # given a Stripe that notes, while it answers, how many pooled connections the app holds
    from shop.extensions import db

    with app.app_context():
        pool = db.engine.pool
    held: dict[str, int] = {}

    def note(method: str, path: str) -> None:
        kind = f"{method} {path.split('/')[2]}{'/cancel' if path.endswith('cancel') else ''}"
        held[kind] = max(held.get(kind, 0), pool.checkedout())

    stripe_stub.on_request = note
    # when an order is paid, refunded, and another one cancelled, through every Stripe call
    order, _intent = paid_order(shop, stripe_stub, client)
    assert shop.api.post(f"/orders/{order['id']}/cancel").get_json()["status"] == "refunded"
    other = shop.order([(shop.leg, 1)])
    start(shop, other)
    assert shop.api.post(f"/orders/{other['id']}/cancel").get_json()["status"] == "cancelled"
    # then no call ran while a connection (and so a transaction) was held
    assert set(held) == {
        "POST payment_intents",
        "GET payment_intents",
        "POST refunds",
        "POST payment_intents/cancel",
    }
    assert held == dict.fromkeys(held, 0)


def test_stripe_calls_have_timeouts_for_a_live_sale(app):
    from orders.payments import gateway

    app.config.update(STRIPE_SECRET_KEY="sk_test_x", STRIPE_READ_TIMEOUT_SECONDS=7)
    with app.app_context():
        http = gateway("stripe").client._requestor._client
    assert http._timeout == (3.0, 7.0)
