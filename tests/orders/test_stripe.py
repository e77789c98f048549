"""Stripe through the real `stripe` library against the local stand-in: intents, webhooks, refunds.

Every delivery is signed the way Stripe signs it; the app re-reads the intent from the stand-in
and acts on its state.
"""

from __future__ import annotations

import time

import pytest

from tests.orders.conftest import WEBHOOK_SECRET
from tests.orders.stripe_stub import StripeStub, event, signed

pytestmark = pytest.mark.stripe


def deliver(client, payload: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    body, headers = signed(payload, secret, timestamp=timestamp)
    return client.post("/webhooks/stripe", data=body, headers=headers)


def start(shop, order) -> dict:
    response = shop.api.post(f"/orders/{order['id']}/payment")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def intent_of(stripe_stub: StripeStub, payment: dict) -> str:
    return payment["client_secret"].split("_secret_")[0]


def test_payment_creates_one_intent_per_order(shop, stripe_stub):
    # given an unpaid order for ¥176.00
    order = shop.order([(shop.leg, 2)])
    # when the buyer asks to pay, twice
    first, second = start(shop, order), start(shop, order)
    # then one intent in CNY fen with automatic payment methods, the same answer both times
    assert first == second
    assert first["provider"] == "stripe" and first["publishable_key"] == "pk_test_farmlive"
    assert len(stripe_stub.intents) == 1 and stripe_stub.created_intents() == 1
    intent = stripe_stub.intents[intent_of(stripe_stub, first)]
    assert intent["amount"] == 17600 and intent["currency"] == "cny"
    assert intent["metadata"] == {"order_id": str(order["id"]), "order_number": order["number"]}
    assert intent["automatic_payment_methods"] == {"enabled": True}


def test_the_idempotency_key_comes_from_the_order(shop, stripe_stub, app):
    from orders.models import Order
    from orders.payments import gateway
    from shop.extensions import db

    order = shop.order()
    with app.app_context():
        row = db.session.get(Order, order["id"])
        first = gateway().create_intent(row)
        again = gateway().create_intent(row)
    assert first == again  # the stand-in honours Idempotency-Key like Stripe
    assert len(stripe_stub.intents) == 1


def test_a_signed_success_webhook_marks_the_order_paid(shop, stripe_stub, client):
    order = shop.order()
    intent_id = intent_of(stripe_stub, start(shop, order))
    intent = stripe_stub.set_status(intent_id, "succeeded")

    response = deliver(client, event("payment_intent.succeeded", intent))

    assert response.status_code == 200 and response.get_json()["result"] == "paid"
    paid = shop.api.get(f"/orders/{order['id']}").get_json()
    assert paid["status"] == "paid" and len(paid["shipments"]) == 1
    assert shop.events(order["id"]) == ["placed", "payment_started", "paid"]


def test_the_browser_cannot_mark_a_stripe_order_paid(shop, stripe_stub, client):
    order = shop.order()
    start(shop, order)
    assert shop.api.post(f"/payments/demo/{order['id']}/confirm").status_code == 404
    assert shop.status(order["id"]) == "pending_payment"


def test_forged_and_stale_deliveries_are_refused_and_change_nothing(shop, stripe_stub, client):
    order = shop.order()
    intent = stripe_stub.set_status(intent_of(stripe_stub, start(shop, order)), "succeeded")
    payload = event("payment_intent.succeeded", intent)

    forged = deliver(client, payload, secret="whsec_not_ours")
    stale = deliver(client, payload, timestamp=int(time.time()) - 3600)
    body, headers = signed(payload, WEBHOOK_SECRET)
    tampered = client.post(
        "/webhooks/stripe", data=body.replace("succeeded", "succeeded "), headers=headers
    )
    unsigned = client.post(
        "/webhooks/stripe", data=body, headers={"Content-Type": "application/json"}
    )

    for response in (forged, stale, tampered, unsigned):
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "bad_signature"
    assert shop.status(order["id"]) == "pending_payment"
    # the genuine delivery still works afterwards: nothing was recorded by the forgeries
    assert deliver(client, payload).get_json()["result"] == "paid"


def test_a_replayed_event_is_applied_once(shop, stripe_stub, client):
    order = shop.order()
    intent = stripe_stub.set_status(intent_of(stripe_stub, start(shop, order)), "succeeded")
    payload = event("payment_intent.succeeded", intent)
    assert deliver(client, payload).get_json()["result"] == "paid"
    assert deliver(client, payload).get_json()["result"] == "duplicate"
    # another event for the same intent does not pay twice either
    assert deliver(client, event("payment_intent.succeeded", intent)).status_code == 200
    assert shop.events(order["id"]).count("paid") == 1
    assert len(shop.api.get(f"/orders/{order['id']}").get_json()["shipments"]) == 1


def test_a_late_failure_after_success_changes_nothing(shop, stripe_stub, client):
    order = shop.order()
    intent_id = intent_of(stripe_stub, start(shop, order))
    failed_snapshot = stripe_stub.set_status(intent_id, "requires_payment_method")
    succeeded = stripe_stub.set_status(intent_id, "succeeded")
    # out of order: success arrives first, the earlier failure afterwards
    assert deliver(client, event("payment_intent.succeeded", succeeded)).status_code == 200
    late = deliver(client, event("payment_intent.payment_failed", failed_snapshot))
    assert late.status_code == 200 and late.get_json()["result"] == "no_change"
    assert shop.status(order["id"]) == "paid"


def test_a_failure_keeps_the_order_payable_and_is_in_its_history(shop, stripe_stub, client):
    order = shop.order()
    intent_id = intent_of(stripe_stub, start(shop, order))
    snapshot = stripe_stub.set_status(intent_id, "requires_payment_method")
    snapshot["last_payment_error"] = {"message": "Your card was declined."}
    assert deliver(client, event("payment_intent.payment_failed", snapshot)).status_code == 200
    assert shop.status(order["id"]) == "pending_payment"
    assert shop.events(order["id"])[-1] == "payment_failed"
    # and a success afterwards still pays it
    assert (
        deliver(
            client,
            event("payment_intent.succeeded", stripe_stub.set_status(intent_id, "succeeded")),
        ).status_code
        == 200
    )
    assert shop.status(order["id"]) == "paid"


def test_unknown_intents_are_acknowledged(shop, stripe_stub, client, caplog):
    payload = event(
        "payment_intent.succeeded",
        {"id": "pi_nobody", "object": "payment_intent", "status": "succeeded", "metadata": {}},
    )
    response = deliver(client, payload)
    assert response.status_code == 200 and response.get_json()["result"] == "unknown_intent"
    assert "pi_nobody" in caplog.text


def test_payment_after_expiry_retakes_the_stock_when_there_is_some(shop, stripe_stub, client):
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    # the buyer pays just as the hold runs out: Stripe refuses to cancel the intent
    intent = stripe_stub.set_status(intent_id, "succeeded")
    assert shop.expire(order["id"]) == 1
    # Stripe's answer to the cancel says it was paid: the late payment is taken at once
    assert stripe_stub.cancels == [(intent_id, "refused")]
    assert shop.status(order["id"]) == "paid"
    assert shop.stock(shop.leg) == 8
    assert shop.events(order["id"])[-4:] == [
        "expired",
        "stripe_payment_not_cancelled",
        "late_payment_restocked",
        "paid",
    ]
    # and the payment's own webhook, arriving after, changes nothing
    result = deliver(client, event("payment_intent.succeeded", intent)).get_json()["result"]
    assert result == "no_change"
    assert shop.stock(shop.leg) == 8
    assert stripe_stub.refunds == []


def test_payment_after_expiry_without_stock_is_refunded(
    shop, stripe_stub, client, factory, login_as
):
    order = shop.order([(shop.lamb, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    stripe_stub.set_status(intent_id, "processing")  # the buyer's bank is slow: not cancellable
    shop.expire(order["id"])
    shop.order([(shop.lamb, 2)], api=login_as(factory.user("buyer")))  # someone else buys them
    assert shop.stock(shop.lamb) == 0
    intent = stripe_stub.set_status(intent_id, "succeeded")  # the bank pays, too late

    response = deliver(client, event("payment_intent.succeeded", intent))

    assert response.get_json()["result"] == "late_payment_refunded"
    assert shop.status(order["id"]) == "cancelled"
    assert shop.stock(shop.lamb) == 0
    assert [r["payment_intent"] for r in stripe_stub.refunds] == [intent_id]
    assert shop.events(order["id"])[-2:] == ["late_payment_no_stock", "late_payment_refunded"]
    # a second delivery refunds nothing more
    deliver(client, event("payment_intent.succeeded", intent))
    assert len(stripe_stub.refunds) == 1


def test_stripe_outage_gives_503_and_the_order_stays_payable(shop, stripe_stub, app):
    order = shop.order()
    app.config["STRIPE_API_BASE"] = StripeStub.unreachable_url()
    refused = shop.api.post(f"/orders/{order['id']}/payment")
    assert refused.status_code == 503
    assert refused.get_json()["error"]["code"] == "payment_unavailable"

    app.config["STRIPE_API_BASE"] = stripe_stub.url
    stripe_stub.mode = "down"
    broken = shop.api.post(f"/orders/{order['id']}/payment")
    assert broken.status_code == 503
    assert shop.status(order["id"]) == "pending_payment"

    stripe_stub.mode = "ok"
    assert shop.api.post(f"/orders/{order['id']}/payment").status_code == 200
    assert len(stripe_stub.intents) == 1


def test_429_from_stripe_is_retried_then_reported(shop, stripe_stub):
    order = shop.order()
    stripe_stub.rate_limited = 1  # one 429, then fine: our back-off gets through
    assert shop.api.post(f"/orders/{order['id']}/payment").status_code == 200

    other = shop.order()
    stripe_stub.rate_limited = 10  # Stripe keeps refusing: a clean 429 for the client
    response = shop.api.post(f"/orders/{other['id']}/payment")
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "payment_busy"
    assert shop.status(other["id"]) == "pending_payment"
    stripe_stub.rate_limited = 0
    assert shop.api.post(f"/orders/{other['id']}/payment").status_code == 200


def test_a_webhook_during_an_outage_is_retried_later(shop, stripe_stub, client):
    order = shop.order()
    intent = stripe_stub.set_status(intent_of(stripe_stub, start(shop, order)), "succeeded")
    payload = event("payment_intent.succeeded", intent)
    stripe_stub.mode = "down"
    assert deliver(client, payload).status_code == 503  # Stripe will deliver it again
    assert shop.status(order["id"]) == "pending_payment"
    stripe_stub.mode = "ok"
    assert deliver(client, payload).get_json()["result"] == "paid"


def test_cancelling_a_paid_order_refunds_through_stripe(shop, stripe_stub, client):
    order = shop.order([(shop.leg, 3)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    deliver(
        client, event("payment_intent.succeeded", stripe_stub.set_status(intent_id, "succeeded"))
    )

    response = shop.api.post(f"/orders/{order['id']}/cancel")

    assert response.status_code == 200 and response.get_json()["status"] == "refunded"
    assert [r["payment_intent"] for r in stripe_stub.refunds] == [intent_id]
    assert shop.stock(shop.leg) == 10
    assert shop.api.post(f"/orders/{order['id']}/cancel").status_code == 200
    assert len(stripe_stub.refunds) == 1


def test_a_refund_during_an_outage_changes_nothing(shop, stripe_stub, client):
    order = shop.order([(shop.leg, 3)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    deliver(
        client, event("payment_intent.succeeded", stripe_stub.set_status(intent_id, "succeeded"))
    )
    stripe_stub.mode = "down"
    response = shop.api.post(f"/orders/{order['id']}/cancel")
    assert response.status_code == 503
    assert shop.status(order["id"]) == "paid" and shop.stock(shop.leg) == 7


def test_a_crowd_starting_payments_at_once_gets_one_intent_each(shop, stripe_stub, app, login_as):
    from concurrent.futures import ThreadPoolExecutor

    app.config["STRIPE_INTENTS_PER_SECOND"] = 40.0
    app.config["MAX_UNPAID_ORDERS"] = 8
    orders = [shop.order() for _ in range(8)]
    clients = [login_as(shop.buyer) for _ in range(4)]

    def pay(i: int) -> int:
        return clients[i % 4].post(f"/orders/{orders[i]['id']}/payment").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(pay, range(8)))
    assert statuses == [200] * 8
    assert stripe_stub.created_intents() == 8 and len(stripe_stub.intents) == 8
