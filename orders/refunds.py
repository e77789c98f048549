"""Settling payments and refunding them: the flows that combine a provider call with a write.

A refund is a state before it is a call. Under the order's lock, one request claims it
(`refund_status` pending, event `refund_requested`) and commits; only that request calls the
provider, outside any transaction; the provider's answer (or its later webhook) then moves the
refund to succeeded, failed or canceled under the lock again. Racing requests find the claim
and change nothing; shipping waits while a refund is pending.
"""

from __future__ import annotations

import logging

from flask import current_app

from orders import services
from orders.errors import InvalidTransition, PaymentRateLimited, PaymentUnavailable
from orders.models import Order, OrderStatus, RefundStatus, ShipmentStatus
from orders.payments import OrderRef, RefundResult
from orders.payments import gateway as gateway_for
from shop import signals
from shop.extensions import db
from shop.i18n import N_
from shop.models import User, utcnow

log = logging.getLogger(__name__)

REFUNDABLE = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)
RETRYABLE = (None, RefundStatus.FAILED, RefundStatus.CANCELED)  # a new refund may be claimed
REFUND_FAILED = "refund_failed"  # `Order.attention`: the admin must see to this refund


def settle_payment(
    order_id: int, *, provider: str, reference: str | None, actor_id: int | None = None
) -> Order:
    """A payment succeeded: mark the order paid; if it had expired with no stock left, refund.

    The single place that both demo confirmation and the Stripe webhook go through, so a late
    payment is never kept without an order to show for it. Of racing deliveries of the same
    payment, one refunds (`apply_payment` tells it so); the others change nothing.
    """
    order, outcome = services.apply_payment(
        order_id, provider=provider, reference=reference, actor_id=actor_id
    )
    if outcome != services.Payment.REFUND_DUE:
        return order
    return _call_provider(order_id, reason="late_payment_refunded", actor_id=None)


def settle_intent(order_id: int, intent: dict) -> str:
    """A Stripe PaymentIntent succeeded: settle its order, if the money is the order's.

    It is only when the intent is the one stored on the order, for exactly the order's amount
    and currency; anything else is recorded and flagged for the admin, and nothing is paid.
    """
    order = services.get_order(order_id)
    expected = {
        "intent": order.payment_intent_id,
        "amount": order.total,
        "currency": order.currency.lower(),
    }
    db.session.commit()
    got = {
        "intent": intent.get("id"),
        "amount": intent.get("amount"),
        "currency": str(intent.get("currency") or "").lower(),
    }
    if got != expected:
        services.flag(order_id, "payment_mismatch", {"expected": expected, "got": got})
        return "payment_mismatch"
    order = settle_payment(order_id, provider="stripe", reference=intent["id"])
    return "late_payment_refunded" if order.status == OrderStatus.CANCELLED else "paid"


def cancel_order(order: Order, *, actor: User) -> Order:
    """The buyer's or admin's cancel: unpaid orders are cancelled, paid ones refunded.

    Repeating it is harmless: a cancelled or refunded order comes back as it is.
    """
    who = "admin" if actor.is_admin and actor.id != order.buyer_id else "buyer"
    order_id = order.id
    if order.status == OrderStatus.PENDING_PAYMENT:
        try:
            return services.cancel_unpaid(order_id, actor_id=actor.id, reason=f"cancelled_by_{who}")
        except InvalidTransition:
            pass  # paid or cancelled meanwhile: look again below
    order = services.get_order(order_id, fresh=True)
    if order.status == OrderStatus.CANCELLED and not (actor.is_admin and late_refund_failed(order)):
        return order
    return refund_order(order_id, actor=actor, reason=f"refunded_by_{who}")


def late_refund_failed(order: Order) -> bool:
    """A late payment's refund failed: the order is cancelled but the buyer's money is not
    back yet. An admin may try the refund again."""
    return order.status == OrderStatus.CANCELLED and order.refund_status in RETRYABLE[1:]


def refund_order(order_id: int, *, actor: User, reason: str = "refunded") -> Order:
    """Refund a paid order in full through the provider that took the money.

    A buyer may do this only before anything shipped; an admin may refund any paid, shipped
    or delivered order (what shipped stays sold; the rest goes back on the shelf).
    """
    order = services.lock_order(order_id)
    if order.status == OrderStatus.REFUNDED and order.refund_status == RefundStatus.SUCCEEDED:
        db.session.commit()
        return order  # asked again: the same answer
    try:
        _check_refundable(order, actor)
    except InvalidTransition:
        db.session.rollback()
        raise
    order.refund_status = RefundStatus.PENDING
    order.refund_id = None  # a failed earlier refund stays in the history, not on the order
    services.record(order, "refund_requested", actor_id=actor.id, data={"reason": reason})
    db.session.commit()
    return _call_provider(order_id, reason=reason, actor_id=actor.id)


def _check_refundable(order: Order, actor: User) -> None:
    if order.refund_status == RefundStatus.PENDING:
        raise InvalidTransition(N_("A refund of this order is already under way."))
    if late_refund_failed(order) and actor.is_admin:
        return  # the admin tries a failed late-payment refund again
    if order.status not in REFUNDABLE or order.refund_status not in RETRYABLE:
        raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot be refunded.")
    shipped = any(
        s.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED) for s in order.shipments
    )
    if not actor.is_admin and (order.status != OrderStatus.PAID or shipped):
        raise InvalidTransition(N_("This order has already shipped; ask us for a refund instead."))


def _call_provider(order_id: int, *, reason: str, actor_id: int | None) -> Order:
    """Ask the provider to refund a claimed refund, then record its answer.

    Runs only in the request that claimed the refund, with no transaction open. The
    idempotency key names this claim (its `refund_requested` event), so the client's own
    network retries never refund twice, while a new claim after a failure is a new refund.
    """
    order = services.get_order(order_id)
    provider, ref = order.payment_provider or "demo", OrderRef.of(order)
    attempt = _claim_event_id(order)
    db.session.commit()  # nothing of the order is read after this: no connection is held
    try:
        result = gateway_for(provider).refund(ref, key=f"order-{order_id}-refund-{attempt}")
    except (PaymentUnavailable, PaymentRateLimited) as err:
        record_refund(
            order_id,
            RefundResult(None, RefundStatus.FAILED.value),
            reason=reason,
            actor_id=actor_id,
            note=err.code,
        )
        raise
    return record_refund(order_id, result, reason=reason, actor_id=actor_id)


def _claim_event_id(order: Order) -> int:
    """The id of the order's `refund_requested` event (the current claim); 0 for a late
    payment's refund, which is claimed once per order."""
    claim = services.last_event(order.id, "refund_requested")
    return claim.id if claim is not None else 0


def record_refund(
    order_id: int,
    result: RefundResult,
    *,
    reason: str | None = None,
    actor_id: int | None = None,
    note: str = "",
) -> Order:
    """Write what the provider says of the order's refund: the caller's answer or a webhook's.

    Applies only to a pending refund (or to the same refund once more, harmlessly). Anything
    else is what the provider did while we believed otherwise: it is recorded, not raised,
    and flagged for the admin when money may be where it should not be.
    """
    order = services.lock_order(order_id)
    known = order.refund_id in (None, result.refund_id)
    if order.refund_status != RefundStatus.PENDING or not known:
        if not (order.refund_id == result.refund_id and order.refund_status == result.status):
            services.record(
                order,
                "refund_reported",
                data={"refund": result.refund_id, "status": result.status, "was": order.status},
            )
            if result.status in (RefundStatus.FAILED, RefundStatus.CANCELED):
                order.attention = REFUND_FAILED
        db.session.commit()
        return order
    reason = reason or _claim_reason(order)
    if result.status == RefundStatus.SUCCEEDED:
        return _refund_in_full(order, refund_id=result.refund_id, actor_id=actor_id, reason=reason)
    if result.status in (RefundStatus.FAILED, RefundStatus.CANCELED):
        order.refund_status = result.status
        order.refund_id = result.refund_id or order.refund_id
        order.attention = REFUND_FAILED
        services.record(
            order, "refund_failed", data={"refund": result.refund_id, "why": note or result.status}
        )
    else:  # pending at the provider (or waiting for the buyer's bank): its webhook settles it
        order.refund_id = result.refund_id
        services.record(order, "refund_pending", data={"refund": result.refund_id})
    status = order.status
    db.session.commit()
    signals.order_changed.send(current_app._get_current_object(), order_id=order_id, status=status)
    return order


def _claim_reason(order: Order) -> str:
    """Why the pending refund was asked for (its claim's event), for a webhook completing it."""
    if order.status == OrderStatus.CANCELLED:
        return "late_payment_refunded"
    claim = services.last_event(order.id, "refund_requested")
    data = claim.data if claim is not None else None
    return str((data or {}).get("reason") or "refunded")


def record_provider_refund(order_id: int, *, amount_refunded: int, reference: str) -> str:
    """A refund made at the provider (Stripe's dashboard): count it once, never backwards.

    `amount_refunded` is the provider's running total for the payment, so a replay, an event
    arriving out of order or the echo of our own refund adds nothing: only a total above what
    the order shows is applied, and nothing while our own refund is pending (its own status
    events settle it). Reaching the order's total refunds it the way our own refund does;
    less is recorded as a partial refund. The charge id (`reference`) stands for the
    provider's refunds in the order's history.
    """
    order = services.lock_order(order_id)
    amount = min(amount_refunded, order.total)
    if (
        order.status not in REFUNDABLE
        or order.refund_status == RefundStatus.PENDING
        or amount <= order.refunded_amount
    ):
        db.session.commit()
        return "no_change"
    if amount == order.total:
        _refund_in_full(order, refund_id=reference, actor_id=None, reason="stripe_refunded")
        return "refunded"
    now = utcnow()
    services.record(
        order,
        "stripe_partly_refunded",
        at=now,
        data={"charge": reference, "amount": amount - order.refunded_amount, "refunded": amount},
    )
    order.refunded_amount = amount
    order.refunded_at = now
    order_id, status = order.id, order.status
    db.session.commit()
    signals.order_changed.send(current_app._get_current_object(), order_id=order_id, status=status)
    return "partly_refunded"


def _refund_in_full(
    order: Order, *, refund_id: str | None, actor_id: int | None, reason: str
) -> Order:
    """Complete a refund of a locked order, commit, then announce: the one write every
    successful refund shares. A paid order becomes `refunded` and its unshipped items go back
    on the shelf; a late payment's order stays `cancelled` (its stock went back before)."""
    now = utcnow()
    amount = order.total - order.refunded_amount  # what this refund adds to any partial ones
    order.refund_id = refund_id
    order.refund_status = RefundStatus.SUCCEEDED
    if order.attention == REFUND_FAILED:
        order.attention = None
    cancelled, returned = [], {}
    if order.status != OrderStatus.CANCELLED:  # a late payment never counted as a sale
        order.refunded_amount = order.total
        order.refunded_at = now
        cancelled = services.cancel_shipments(order, at=now)
        never_shipped = {s.cooperative_id for s in cancelled}
        returned = services.restock([i for i in order.items if i.cooperative_id in never_shipped])
        order.status = OrderStatus.REFUNDED
    services.record(
        order,
        reason,
        actor_id=actor_id,
        at=now,
        data={
            "refund": refund_id,
            "amount": amount,
            "restocked": {str(k): v for k, v in returned.items()},
        },
    )
    shipments = [(s.id, s.cooperative_id) for s in cancelled]
    order_id, status = order.id, order.status
    db.session.commit()
    app = current_app._get_current_object()
    if returned:
        signals.stock_changed.send(app, variant_ids=sorted(returned))
    signals.order_changed.send(app, order_id=order_id, status=status)
    for shipment_id, cooperative_id in shipments:
        signals.shipment_changed.send(app, shipment_id=shipment_id, cooperative_id=cooperative_id)
    return order
