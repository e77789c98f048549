"""POST /webhooks/stripe: signed provider news, applied once, by the intent's current state.

The signature is checked on the raw body. Each event id is claimed in `WebhookEvent` (primary
key) with its payload, leased while one delivery applies it, and marked applied only when that
succeeded: a replay of an applied event does nothing, a duplicate that arrives while the first
still runs is told to come back (409), and a claim left unapplied (the process died) is applied
by the next delivery or by the background re-drive. The intent is re-read from Stripe
and acted on by its state, so events arriving out of order never move an order backwards.
`charge.refunded` (a refund made in Stripe's dashboard) carries the charge's running refunded
total, which is applied only where it exceeds what the order already shows. A payment settles
an order only when its intent is the one stored on the order and its amount and currency are
the order's; anything else is recorded and flagged for the admin. `refund.updated` and
`refund.failed` settle a pending refund; `charge.dispute.created` flags the order.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import stripe
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from orders import services
from orders.models import Order, OrderStatus, RefundStatus, WebhookEvent
from orders.payments import RefundResult, gateway
from orders.refunds import record_provider_refund, record_refund, settle_intent
from shop.database import begin_write
from shop.errors import DomainError
from shop.extensions import db
from shop.health import add_note
from shop.models import utcnow

log = logging.getLogger(__name__)
SIGNATURE_TOLERANCE = 300  # seconds, Stripe's own default

bp = Blueprint("orders_webhooks", __name__)
_UNSETTLED = (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)


@bp.record_once
def _show_unapplied(state) -> None:
    """/healthz lists webhook claims left unapplied for longer than a lease."""
    add_note(state.app, "unapplied_webhooks", lambda: unapplied_count())


class BadWebhook(DomainError):
    status, code, message = 400, "bad_signature", "The webhook signature is missing or invalid."


@bp.post("/webhooks/stripe")
def stripe_webhook():
    """Verify, claim and apply one Stripe event; 2xx tells Stripe not to send it again."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise BadWebhook("Stripe webhooks are not configured on this server.")
    payload = request.get_data(as_text=True)
    try:
        stripe.WebhookSignature.verify_header(
            payload, request.headers.get("Stripe-Signature"), secret, SIGNATURE_TOLERANCE
        )
    except stripe.SignatureVerificationError:
        raise BadWebhook() from None
    try:
        event = json.loads(payload)
        event_id, kind, obj = event["id"], event["type"], event["data"]["object"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise BadWebhook("The webhook body is not a Stripe event.", fields={}) from None
    if not (_is_id(event_id) and _is_id(kind, 80) and isinstance(obj, dict)):
        raise BadWebhook("The webhook body is not a Stripe event.", fields={})
    return jsonify({"received": True, "result": handle_event(event_id, kind, obj)})


class ApplyingElsewhere(DomainError):
    status, code = 409, "webhook_in_progress"
    message = "This event is being applied by another delivery; send it again later."


def lease_seconds() -> float:
    """How long one delivery may take to apply an event before another may (WEBHOOK_LEASE_SECONDS);
    a claim unapplied for longer is counted in /healthz and re-driven in the background."""
    return float(current_app.config["WEBHOOK_LEASE_SECONDS"])


def handle_event(event_id: str, kind: str, obj: dict, *, clock=utcnow) -> str:
    """Apply an event once; returns what happened (for logs and tests).

    The claim is recorded with the payload, then leased for applying; only a claim whose
    applying succeeded is marked applied. A delivery that finds the event applied answers
    "duplicate"; one that finds it being applied answers 409, so the provider sends it again
    later instead of taking a 2xx for an event nobody finished. A failure releases the lease
    and answers 5xx for the same reason.
    """
    _record_claim(event_id, kind, obj, clock())
    if not _take_lease(event_id, clock()):
        begin_write()
        applied = db.session.scalar(
            select(WebhookEvent.applied_at).where(WebhookEvent.id == event_id)
        )
        db.session.commit()
        if applied is not None:
            return "duplicate"
        raise ApplyingElsewhere()
    return _apply_leased(event_id, kind, obj, clock)


def _record_claim(event_id: str, kind: str, obj: dict, now) -> None:
    begin_write()
    db.session.add(
        WebhookEvent(id=event_id, provider="stripe", type=kind, payload=obj, received_at=now)
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # seen before: the lease decides what happens now


def _take_lease(event_id: str, now) -> bool:
    """Compare-and-set: lease an unapplied claim whose lease is free or ran out."""
    begin_write()
    taken = db.session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event_id,
            WebhookEvent.applied_at.is_(None),
            or_(WebhookEvent.lease_until.is_(None), WebhookEvent.lease_until < now),
        )
        .values(lease_until=now + timedelta(seconds=lease_seconds()))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return taken == 1


def _apply_leased(event_id: str, kind: str, obj: dict, clock) -> str:
    try:
        result = _apply(kind, obj)
    except Exception:
        db.session.rollback()
        _finish(event_id, lease_until=None)
        raise
    _finish(event_id, applied_at=clock(), lease_until=None, note=result)
    return result


def _finish(event_id: str, **values) -> None:
    begin_write()
    db.session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def redrive_unapplied(*, clock=utcnow, older_than: float | None = None, limit: int = 50) -> int:
    """Apply again the claims that were never applied (a delivery died mid-way) and whose
    lease ran out, from their stored payload; the background loop runs this. Returns how many
    were applied now."""
    now = clock()
    older_than = lease_seconds() if older_than is None else older_than
    begin_write()
    stale = db.session.execute(
        select(WebhookEvent.id, WebhookEvent.type, WebhookEvent.payload)
        .where(
            WebhookEvent.applied_at.is_(None),
            WebhookEvent.payload.is_not(None),
            WebhookEvent.received_at < now - timedelta(seconds=older_than),
        )
        .order_by(WebhookEvent.received_at)
        .limit(limit)
    ).all()
    db.session.commit()
    applied = 0
    for event_id, kind, obj in stale:
        if _take_lease(event_id, clock()):
            log.warning("re-driving unapplied webhook event %s (%s)", event_id, kind)
            _apply_leased(event_id, kind, obj, clock)
            applied += 1
    return applied


def unapplied_count(*, clock=utcnow, older_than: float | None = None) -> int:
    """Claims older than a lease that are still not applied: an admin should know."""
    cutoff = clock() - timedelta(seconds=lease_seconds() if older_than is None else older_than)
    return db.session.scalar(
        select(func.count())
        .select_from(WebhookEvent)
        .where(WebhookEvent.applied_at.is_(None), WebhookEvent.received_at < cutoff)
    )


def _is_id(value: object, longest: int = 255) -> bool:
    """Stripe ids and types are short printable strings; nothing else names an event or intent."""
    return isinstance(value, str) and 0 < len(value) <= longest and value.isprintable()


def _apply(kind: str, obj: dict) -> str:
    if kind == "charge.refunded":
        return _apply_refund(obj)
    if kind in ("refund.created", "refund.updated", "refund.failed"):
        return _apply_refund_status(obj)
    if kind == "charge.dispute.created":
        return _apply_dispute(obj)
    if not kind.startswith("payment_intent.") or not _is_id(obj.get("id")):
        return "ignored"
    intent_id = obj["id"]
    order = _order_for(intent_id, obj)
    if order is None:
        log.warning("Stripe event %s for unknown intent %s acknowledged", kind, intent_id)
        return "unknown_intent"
    order_id = order.id
    settled = order.status not in _UNSETTLED or order.refund_status is not None
    db.session.commit()
    if settled:
        return "no_change"  # paid, shipped, refunded or late-refunded: nothing moves back
    intent = gateway("stripe").retrieve_intent(intent_id)
    if intent["status"] == "succeeded":
        return settle_intent(order_id, intent)
    if kind in ("payment_intent.payment_failed", "payment_intent.canceled"):
        return _note_failure(order_id, kind, obj, intent["status"])
    return "no_change"


def _apply_refund(charge: dict) -> str:
    """A refund made in Stripe: count the charge's cumulative `amount_refunded` on its order.

    Should the refund overtake the payment's own news, the payment is applied first (from the
    intent's state, as its event would be), so the refund lands on a paid order.
    """
    intent_id, refunded = charge.get("payment_intent"), charge.get("amount_refunded")
    if not (_is_id(intent_id) and _is_id(charge.get("id"))):
        return "ignored"
    if type(refunded) is not int or refunded <= 0:
        return "ignored"
    order = _order_for(intent_id, charge)
    if order is None:
        log.warning("Stripe refund for unknown intent %s acknowledged", intent_id)
        return "unknown_intent"
    order_id = order.id
    unsettled = order.status in _UNSETTLED and order.refund_status is None
    db.session.commit()
    if unsettled:
        _apply("payment_intent.succeeded", {"id": intent_id})
    return record_provider_refund(order_id, amount_refunded=refunded, reference=charge["id"])


def _apply_refund_status(refund: dict) -> str:
    """A refund's own news: settles our pending refund (succeeded, failed, canceled)."""
    refund_id, status = refund.get("id"), refund.get("status")
    if not (_is_id(refund_id) and status in _REFUND_STATUSES):
        return "ignored"
    order = db.session.scalar(select(Order).where(Order.refund_id == refund_id))
    intent_id = refund.get("payment_intent")
    if order is None and _is_id(intent_id):
        order = db.session.scalar(select(Order).where(Order.payment_intent_id == intent_id))
    if order is None:
        log.warning("Stripe refund %s for no known order acknowledged", refund_id)
        return "unknown_refund"
    order_id = order.id
    db.session.commit()
    if status == RefundStatus.PENDING:
        return "no_change"
    order = record_refund(order_id, RefundResult(refund_id, status))
    return f"refund_{order.refund_status}"


def _apply_dispute(dispute: dict) -> str:
    """A buyer disputed a payment at their bank: the admin must answer it at Stripe."""
    intent_id = dispute.get("payment_intent")
    order = (
        db.session.scalar(select(Order).where(Order.payment_intent_id == intent_id))
        if _is_id(intent_id)
        else None
    )
    if order is None:
        return "unknown_intent"
    order_id = order.id
    db.session.commit()
    data = {"dispute": str(dispute.get("id") or "")[:255], "reason": dispute.get("reason")}
    services.flag(order_id, "dispute", {**data, "amount": dispute.get("amount")})
    return "dispute"


_REFUND_STATUSES = {status.value for status in RefundStatus}


def _order_for(intent_id: str, obj: dict) -> Order | None:
    order = db.session.scalar(select(Order).where(Order.payment_intent_id == intent_id))
    if order is not None:
        return order
    metadata = obj.get("metadata")
    order_id = str(metadata.get("order_id") or "") if isinstance(metadata, dict) else ""
    if order_id.isascii() and order_id.isdigit() and int(order_id) < 2**31:
        candidate = db.session.get(Order, int(order_id))
        if candidate is not None and candidate.payment_intent_id in (None, intent_id):
            return candidate
    return None


def _note_failure(order_id: int, kind: str, obj: dict, state: str) -> str:
    """A failed attempt is history only: the order stays payable (or stays paid)."""
    order = services.lock_order(order_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        db.session.commit()
        return "no_change"
    error = obj.get("last_payment_error") or {}
    services.record(
        order,
        "payment_failed",
        message=str(error.get("message") or "")[:500],
        data={"provider": "stripe", "event": kind, "intent_status": state},
    )
    db.session.commit()
    return "failure_recorded"
