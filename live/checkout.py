"""Instant checkout from a pin: the live price from the server, the per-buyer limit in the
order's own transaction, one order per tap through the Idempotency-Key."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, bindparam, select

from live.errors import (
    IdempotencyKeyReused,
    LimitExceeded,
    NotLive,
    NotPinned,
    SessionNotFound,
)
from live.models import LiveSession, Pin, PinPrice, SessionStatus
from orders import services as orders
from orders.errors import SoldOut, TooManyUnpaid
from orders.models import Order
from shop import signals
from shop.database import begin_write
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
    """Place a `pending_payment` order at the current pin's live price; (order, created).

    One write transaction: the pin is read inside it (so the price and the limit are the ones
    current when the order is written), then the order service counts the buyer's units under
    the pin against its per-buyer limit (under the buyer's row lock), inserts the order and
    takes the stock with the commit. A tap that is refused (not live, not pinned, over a
    limit, sold out) may be a retry of a tap that already won: its key then returns that order
    instead of the refusal.
    """
    buyer_id = buyer.id  # a rollback below expires `buyer`; its id is all a refusal needs
    if sold_out_memo(current_app).covers(variant_id):
        return _refused(SoldOut(variant_id, left=0), buyer_id, session_id, idempotency_key)
    begin_write()
    try:
        pin_id, product_id, live_price, limit = _current_offer(session_id, variant_id)
        if limit is not None and quantity > limit:
            raise LimitExceeded()
        order, created = orders.place(
            buyer,
            [orders.Line(variant_id, quantity, unit_price=live_price)],
            address,
            live_session_id=session_id,
            pin_id=pin_id,
            idempotency_key=idempotency_key,
            pin_limit=orders.PinLimit(pin_id, product_id, limit) if limit else None,
        )
    except (NotLive, NotPinned, LimitExceeded, TooManyUnpaid, SoldOut) as refusal:
        db.session.rollback()
        if isinstance(refusal, SoldOut) and refusal.left == 0:
            sold_out_memo(current_app).remember(variant_id)
        return _refused(refusal, buyer_id, session_id, idempotency_key)
    except Exception:
        db.session.rollback()
        raise
    return (order, True) if created else (_replayed(order, session_id), False)


def _refused(
    refusal: Exception, buyer_id: int, session_id: int, idempotency_key: str
) -> tuple[Order, bool]:
    """Raise `refusal`, unless this tap is a retry of one that won: then its order."""
    existing = orders.find_by_key(buyer_id, idempotency_key)
    if existing is None:
        raise refusal
    return _replayed(existing, session_id), False


class SoldOutMemo:
    """Variants this process recently found sold out, so a flash crowd's late taps are refused
    without a transaction each (the taps' own retries are still found by their key).

    An entry lasts SOLD_OUT_MEMO_SECONDS; any stock change this process makes or hears about
    (`stock_changed`) ends it at once, so a restock elsewhere is missed for at most that long.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._until: dict[int, float] = {}

    def remember(self, variant_id: int) -> None:
        if self._seconds > 0:
            self._until[variant_id] = time.monotonic() + self._seconds

    def covers(self, variant_id: int) -> bool:
        until = self._until.get(variant_id)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        self._until.pop(variant_id, None)
        return False

    def forget(self, variant_ids: list[int]) -> None:
        for variant_id in variant_ids:
            self._until.pop(variant_id, None)


def sold_out_memo(app: Flask) -> SoldOutMemo:
    """The app's memo (one per app, so test apps never share one)."""
    memo = app.extensions.get("farmlive.sold_out")
    if memo is None:
        seconds = float(app.config.get("SOLD_OUT_MEMO_SECONDS", 0))
        memo = app.extensions.setdefault("farmlive.sold_out", SoldOutMemo(seconds))
    return memo


_SESSION, _PIN, _PRICE = LiveSession.__table__, Pin.__table__, PinPrice.__table__
_OFFER = (
    select(
        _SESSION.c.status,
        _PIN.c.id,
        _PIN.c.product_id,
        _PRICE.c.live_price,
        _PIN.c.per_buyer_limit,
    )
    .select_from(_SESSION)
    .outerjoin(_PIN, and_(_PIN.c.session_id == _SESSION.c.id, _PIN.c.ended_at.is_(None)))
    .outerjoin(
        _PRICE, and_(_PRICE.c.pin_id == _PIN.c.id, _PRICE.c.variant_id == bindparam("variant_id"))
    )
    .where(_SESSION.c.id == bindparam("session_id"))
    .limit(1)
)


def _current_offer(session_id: int, variant_id: int) -> tuple[int, int, int, int | None]:
    """(pin id, product id, live price, per-buyer limit) for `variant_id` in the session's
    current pin."""
    row = db.session.execute(_OFFER, {"session_id": session_id, "variant_id": variant_id}).first()
    if row is None:
        raise SessionNotFound()
    status, pin_id, product_id, live_price, limit = row
    if status != SessionStatus.LIVE:
        raise NotLive()
    if pin_id is None or live_price is None:
        raise NotPinned(fields={"variant_id": [str(variant_id)]})
    return pin_id, product_id, live_price, limit


def _replayed(order: Order, session_id: int) -> Order:
    if order.live_session_id != session_id:
        raise IdempotencyKeyReused()
    return order


_LIMITED_PINS = (
    select(_PIN.c.id, _PIN.c.product_id, _PIN.c.per_buyer_limit)
    .join(_SESSION, _SESSION.c.id == _PIN.c.session_id)
    .join(_PRICE, _PRICE.c.pin_id == _PIN.c.id)
    .where(
        _PIN.c.ended_at.is_(None),
        _PIN.c.per_buyer_limit.is_not(None),
        _SESSION.c.status == SessionStatus.LIVE.value,
        _PRICE.c.variant_id.in_(bindparam("variant_ids", expanding=True)),
    )
    .distinct()
)


@signals.placing_order.connect
def _limits_for_cart(app, variant_ids: list[int] | None = None, **_: Any) -> list:
    """While a variant is pinned with a per-buyer limit, a cart order of it counts against
    that limit too (the order service asks inside the order's transaction)."""
    if not variant_ids:
        return []
    rows = db.session.execute(_LIMITED_PINS, {"variant_ids": list(variant_ids)}).all()
    return [orders.PinLimit(pin_id, product_id, limit) for pin_id, product_id, limit in rows]


def saved_address(user: Any) -> dict | None:
    """The address the buy sheet prefills: the buyer's saved one, else their latest order's."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.saved_address:
        return user.saved_address
    return db.session.scalar(
        select(Order.address).where(Order.buyer_id == user.id).order_by(Order.id.desc()).limit(1)
    )
