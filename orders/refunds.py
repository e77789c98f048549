"""Settling payments and refunding them: the flows that combine a provider call with a write.

The provider is asked first, outside any transaction; the answer is then written under the
order's row lock, re-checked there so a retry or a racing request never applies it twice.
"""

from __future__ import annotations

import logging

from flask import current_app

from orders import services
from orders.errors import InvalidTransition
from orders.models import Order, OrderStatus, ShipmentStatus
from orders.payments import gateway as gateway_for
from shop import signals
from shop.extensions import db
from shop.i18n import N_
from shop.models import User, utcnow

log = logging.getLogger(__name__)

REFUNDABLE = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)


def settle_payment(
    order_id: int, *, provider: str, reference: str | None, actor_id: int | None = None
) -> Order:
    """A payment succeeded: mark the order paid; if it had expired with no stock left, refund.

    The single place that both demo confirmation and the Stripe webhook go through, so a late
    payment is never kept without an order to show for it.
    """
    order = services.mark_paid(order_id, provider=provider, reference=reference, actor_id=actor_id)
    if order.status != OrderStatus.CANCELLED or order.refund_id is not None:
        return order
    if reference and not order.payment_intent_id:
        order = services.lock_order(order_id)
        order.payment_intent_id = reference
        db.session.commit()
    refund_id = gateway_for(provider).refund(order)
    order = services.lock_order(order_id)
    if order.refund_id is None:
        order.refund_id = refund_id
        services.record(
            order,
            "late_payment_refunded",
            data={"provider": provider, "refund": refund_id, "amount": order.total},
        )
    db.session.commit()
    return order


def refund_order(order: Order, *, actor: User, reason: str = "refunded") -> Order:
    """Refund a paid order through the provider it was paid with; unshipped stock goes back.

    A buyer may do this only before anything shipped (checked by the caller's rules here);
    an admin may refund any paid, shipped or delivered order.
    """
    _check_refundable(order, actor)
    order_id = order.id
    db.session.commit()  # no transaction open across the provider call
    refund_id = gateway_for(order.payment_provider or "demo").refund(order)
    return apply_refund(order_id, refund_id=refund_id, actor=actor, reason=reason)


def _check_refundable(order: Order, actor: User) -> None:
    if order.status == OrderStatus.REFUNDED:
        return
    if order.status not in REFUNDABLE:
        raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot be refunded.")
    shipped = any(
        s.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED) for s in order.shipments
    )
    if not actor.is_admin and (order.status != OrderStatus.PAID or shipped):
        raise InvalidTransition(N_("This order has already shipped; ask us for a refund instead."))


def apply_refund(order_id: int, *, refund_id: str, actor: User, reason: str) -> Order:
    """Write a refund the provider accepted: status, stock of unshipped items, shipments."""
    order = services.lock_order(order_id)
    if order.status == OrderStatus.REFUNDED:
        db.session.commit()
        return order
    _check_refundable(order, actor)
    return _refund_in_full(order, refund_id=refund_id, actor_id=actor.id, reason=reason)


def record_provider_refund(order_id: int, *, amount_refunded: int, reference: str) -> str:
    """A refund made at the provider (Stripe's dashboard): count it once, never backwards.

    `amount_refunded` is the provider's running total for the payment, so a replay, an event
    arriving out of order or the echo of our own refund (already counted by `apply_refund`)
    adds nothing: only a total above what the order shows is applied. Reaching the order's
    total refunds it the way our own refund does; less is recorded as a partial refund. The
    charge id (`reference`) stands for the provider's refunds in the order's history.
    """
    order = services.lock_order(order_id)
    amount = min(amount_refunded, order.total)
    if order.status not in REFUNDABLE or amount <= order.refunded_amount:
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


def _refund_in_full(order: Order, *, refund_id: str, actor_id: int | None, reason: str) -> Order:
    """Refund a locked order in full, commit, then announce: the one write both refunds share."""
    now = utcnow()
    cancelled = services.cancel_shipments(order, at=now)
    never_shipped = {s.cooperative_id for s in cancelled}
    returned = services.restock([i for i in order.items if i.cooperative_id in never_shipped])
    amount = order.total - order.refunded_amount  # what this refund adds to any partial ones
    order.status = OrderStatus.REFUNDED
    order.refund_id = refund_id
    order.refunded_amount = order.total
    order.refunded_at = now
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
    db.session.commit()
    app = current_app._get_current_object()
    if returned:
        signals.stock_changed.send(app, variant_ids=sorted(returned))
    signals.order_changed.send(app, order_id=order.id, status=order.status)
    for shipment in cancelled:
        signals.shipment_changed.send(
            app, shipment_id=shipment.id, cooperative_id=shipment.cooperative_id
        )
    return order


def cancel_order(order: Order, *, actor: User) -> Order:
    """The buyer's or admin's cancel: unpaid orders are cancelled, paid ones refunded."""
    who = "admin" if actor.is_admin and actor.id != order.buyer_id else "buyer"
    if order.status == OrderStatus.PENDING_PAYMENT:
        try:
            return services.cancel_unpaid(order.id, actor_id=actor.id, reason=f"cancelled_by_{who}")
        except InvalidTransition:
            order = services.get_order(order.id)  # paid meanwhile: fall through to a refund
            db.session.refresh(order)
    if order.status == OrderStatus.CANCELLED:
        return order
    return refund_order(order, actor=actor, reason=f"refunded_by_{who}")
