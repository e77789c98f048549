"""Webhook events are applied exactly once: a duplicate during the first delivery is sent back,
a claim left unapplied (the process died mid-apply) is applied later, never acknowledged unapplied.

The real `stripe` library talks to the local stand-in; deliveries are signed as Stripe signs them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.orders.stripe_stub import event
from tests.orders.test_stripe import deliver, intent_of, start

pytestmark = pytest.mark.stripe


def claim(app, event_id: str):
    from orders.models import WebhookEvent
    from shop.extensions import db

    with app.app_context():
        row = db.session.get(WebhookEvent, event_id)
        db.session.expunge_all()
        return row


def paid_intent(shop, stripe_stub) -> tuple[dict, dict]:
    order = shop.order([(shop.leg, 2)])
    intent_id = intent_of(stripe_stub, start(shop, order))
    return order, stripe_stub.set_status(intent_id, "succeeded")


def test_a_duplicate_while_the_first_delivery_applies_is_sent_back(shop, stripe_stub, app):
    # given a payment event whose first delivery is still applying it (its lease is held)
    from orders import webhooks

    order, intent = paid_intent(shop, stripe_stub)
    payload = event("payment_intent.succeeded", intent)
    with app.app_context():
        webhooks._record_claim(payload["id"], payload["type"], intent, webhooks.utcnow())
        assert webhooks._take_lease(payload["id"], webhooks.utcnow())
    # when Stripe delivers it again meanwhile
    response = deliver(app.test_client(), payload)
    # then it is not acknowledged (Stripe will retry), and nothing was applied twice
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "webhook_in_progress"
    assert shop.status(order["id"]) == "pending_payment"
    assert claim(app, payload["id"]).applied_at is None


def test_a_claim_whose_delivery_died_is_applied_by_the_next_delivery(shop, stripe_stub, app):
    # given a payment event whose first delivery died mid-apply (claim recorded, lease run out)
    from orders import webhooks

    order, intent = paid_intent(shop, stripe_stub)
    payload = event("payment_intent.succeeded", intent)
    long_ago = webhooks.utcnow() - timedelta(minutes=5)
    with app.app_context():
        webhooks._record_claim(payload["id"], payload["type"], intent, long_ago)
        assert webhooks._take_lease(payload["id"], long_ago)
    # when Stripe retries it
    response = deliver(app.test_client(), payload)
    # then it is applied now, once, and marked applied; a further retry is a duplicate
    assert response.status_code == 200 and response.get_json()["result"] == "paid"
    assert shop.status(order["id"]) == "paid"
    assert claim(app, payload["id"]).applied_at is not None
    assert deliver(app.test_client(), payload).get_json()["result"] == "duplicate"
    assert shop.events(order["id"]).count("paid") == 1


def test_a_failed_apply_is_not_acknowledged_and_is_applied_on_retry(shop, stripe_stub, app):
    # given Stripe down while the payment's event is delivered
    order, intent = paid_intent(shop, stripe_stub)
    payload = event("payment_intent.succeeded", intent)
    stripe_stub.mode = "down"
    first = deliver(app.test_client(), payload)
    assert first.status_code == 503
    assert claim(app, payload["id"]).applied_at is None
    # when Stripe is back and redelivers
    stripe_stub.mode = "ok"
    again = deliver(app.test_client(), payload)
    # then it is applied
    assert again.status_code == 200 and again.get_json()["result"] == "paid"
    assert shop.status(order["id"]) == "paid"


def test_the_background_re_drive_applies_claims_left_unapplied(shop, stripe_stub, app):
    # given a claim left unapplied six minutes ago, which Stripe will not send again soon
    from orders import webhooks

    order, intent = paid_intent(shop, stripe_stub)
    payload = event("payment_intent.succeeded", intent)
    long_ago = webhooks.utcnow() - timedelta(minutes=6)
    with app.app_context():
        webhooks._record_claim(payload["id"], payload["type"], intent, long_ago)
        assert webhooks.unapplied_count() == 1
    notes = app.test_client().get("/healthz").get_json()["notes"]
    assert notes == {"unapplied_webhooks": 1}
    # when the background pass runs
    from orders import tasks

    assert tasks.redrive_once(app) == 1
    # then the order is paid and nothing is left unapplied
    assert shop.status(order["id"]) == "paid"
    with app.app_context():
        assert webhooks.unapplied_count() == 0
    assert "notes" not in app.test_client().get("/healthz").get_json()
