"""Instant checkout from a pin: the live price from the server, the per-buyer limit in the
order's own transaction, one order per tap through the Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from live.errors import IdempotencyKeyReused, LimitExceeded, NotLive, NotPinned
from live.models import LiveSession, Pin, PinPurchase, SessionStatus
from live.services import current_pin, get_session
from orders import services as orders
from orders.models import Order, OrderStatus
from shop.extensions import db
from shop.models import User


def checkout(
    buyer: User,
    session_id: int,
    *,
    variant_id: int,
    quantity: int,
    address: dict,
    idempotency_key: str,
) -> tuple[Order, bool]:
    """Place a `pending_payment` order at the current pin's live price; (order, created)."""
    existing = db.session.scalar(
        select(Order).where(Order.buyer_id == buyer.id, Order.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return _replayed(existing, session_id), False
    live = get_session(session_id)
    if live.status != SessionStatus.LIVE:
        raise NotLive()
    pin = current_pin(session_id)
    live_price = pin.live_price(variant_id) if pin is not None else None
    if pin is None or live_price is None:
        raise NotPinned(fields={"variant_id": [str(variant_id)]})
    if pin.per_buyer_limit is not None and quantity > pin.per_buyer_limit:
        raise LimitExceeded(f"At most {pin.per_buyer_limit} per buyer.")
    pin_id, limit = pin.id, pin.per_buyer_limit
    order = orders.place_order(
        buyer,
        [orders.Line(variant_id, quantity, unit_price=live_price)],
        address,
        live_session_id=session_id,
        pin_id=pin_id,
        idempotency_key=idempotency_key,
        guard=_guard(session_id, pin_id, buyer.id, quantity, limit),
    )
    return order, True


def _replayed(order: Order, session_id: int) -> Order:
    if order.live_session_id != session_id:
        raise IdempotencyKeyReused()
    return order


def _guard(
    session_id: int, pin_id: int, buyer_id: int, quantity: int, limit: int | None
) -> Callable[[Order], None]:
    """Inside the order's transaction: the pin is still current and the limit still holds."""

    def guard(order: Order) -> None:
        still = db.session.execute(
            select(Pin.id)
            .join(LiveSession, LiveSession.id == Pin.session_id)
            .where(
                Pin.id == pin_id,
                Pin.ended_at.is_(None),
                LiveSession.status == SessionStatus.LIVE,
            )
        ).first()
        if still is None:
            raise NotPinned()
        if limit is not None:
            _count_purchase(pin_id, buyer_id, quantity, limit)

    return guard


def _count_purchase(pin_id: int, buyer_id: int, quantity: int, limit: int) -> None:
    """Add `quantity` to the buyer's units under the pin only while it stays within `limit`.

    A conditional UPDATE, or the first INSERT; a concurrent first tap that loses the race on
    the unique (pin, buyer) row retries the UPDATE, which then sees the winner's units.
    """
    if _add_units(pin_id, buyer_id, quantity, limit):
        return
    savepoint = db.session.begin_nested()
    try:
        db.session.execute(
            insert(PinPurchase).values(pin_id=pin_id, buyer_id=buyer_id, quantity=quantity)
        )
        savepoint.commit()
        return
    except IntegrityError:
        savepoint.rollback()
    if not _add_units(pin_id, buyer_id, quantity, limit):
        raise LimitExceeded()


def _add_units(pin_id: int, buyer_id: int, quantity: int, limit: int) -> bool:
    result = db.session.execute(
        update(PinPurchase)
        .where(
            PinPurchase.pin_id == pin_id,
            PinPurchase.buyer_id == buyer_id,
            PinPurchase.quantity + quantity <= limit,
        )
        .values(quantity=PinPurchase.quantity + quantity)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return True
    exists = db.session.scalar(
        select(PinPurchase.id).where(PinPurchase.pin_id == pin_id, PinPurchase.buyer_id == buyer_id)
    )
    if exists is not None:
        raise LimitExceeded()
    return False


def release_units(app: Flask, order_id: int) -> None:
    """A cancelled or expired live order gives its units back to the buyer's limit, once."""
    with app.app_context():
        order = db.session.get(Order, order_id)
        if order is None or order.pin_id is None or order.status != OrderStatus.CANCELLED:
            return
        from shop.database import begin_write

        begin_write()
        db.session.execute(
            update(PinPurchase)
            .where(
                PinPurchase.pin_id == order.pin_id,
                PinPurchase.buyer_id == order.buyer_id,
                PinPurchase.quantity >= order.units,
            )
            .values(quantity=PinPurchase.quantity - order.units)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def saved_address(user: Any) -> dict | None:
    """The address the buy sheet prefills: the buyer's saved one, else their latest order's."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.saved_address:
        return user.saved_address
    return db.session.scalar(
        select(Order.address).where(Order.buyer_id == user.id).order_by(Order.id.desc()).limit(1)
    )
