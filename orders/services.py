"""The order service: the only code that changes stock and order state.

Every function owns its transaction, writes an order event with each change, and announces
what happened (shop.signals) only after the commit succeeded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from orders.errors import InvalidTransition, OrderNotFound, SoldOut, UnknownVariant
from orders.models import Order, OrderEvent, OrderItem, OrderStatus, Shipment, ShipmentStatus
from shop import signals
from shop.database import begin_write
from shop.extensions import db
from shop.models import Product, User, Variant, utcnow

Clock = Callable[[], datetime]
_NUMBER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud on the phone


@dataclass(frozen=True)
class Line:
    """One requested line. `unit_price` is set by server code only (a pin's live price)."""

    variant_id: int
    quantity: int
    unit_price: int | None = None


def place_order(
    buyer: User,
    lines: list[Line],
    address: dict,
    *,
    clock: Clock = utcnow,
    live_session_id: int | None = None,
    pin_id: int | None = None,
    idempotency_key: str | None = None,
    guard: Callable[[Order], None] | None = None,
) -> Order:
    """Create a `pending_payment` order that holds its stock until `expires_at`.

    All or nothing: each variant's stock is taken with a conditional UPDATE in this transaction,
    just before the commit; if any line cannot be had, nothing is taken. `guard(order)` runs
    inside the transaction before that (live checkout enforces its per-buyer limit there) and
    may raise to undo everything. With an `idempotency_key`, the same key from the same buyer
    returns the same order.
    """
    if idempotency_key:
        existing = _find_by_key(buyer.id, idempotency_key)
        if existing is not None:
            return existing
    merged = _merge_lines(lines)
    begin_write()
    try:
        order = _create_order(
            buyer, merged, address, clock, live_session_id, pin_id, idempotency_key
        )
        if guard is not None:
            guard(order)
        # Stock last: the hot variant rows stay locked only from here to the commit.
        for variant_id, line in merged.items():
            _take_stock(variant_id, line.quantity)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _find_by_key(buyer.id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing
    except Exception:
        db.session.rollback()
        raise
    signals.stock_changed.send(current_app._get_current_object(), variant_ids=list(merged))
    signals.order_changed.send(
        current_app._get_current_object(), order_id=order.id, status=order.status
    )
    return order


def _find_by_key(buyer_id: int, key: str) -> Order | None:
    return db.session.scalar(
        select(Order).where(Order.buyer_id == buyer_id, Order.idempotency_key == key)
    )


def _merge_lines(lines: list[Line]) -> dict[int, Line]:
    """One line per variant, in id order so concurrent orders lock rows in the same order."""
    merged: dict[int, Line] = {}
    for line in lines:
        previous = merged.get(line.variant_id)
        quantity = line.quantity + (previous.quantity if previous else 0)
        merged[line.variant_id] = Line(line.variant_id, quantity, line.unit_price)
    return dict(sorted(merged.items()))


def _create_order(
    buyer: User,
    lines: dict[int, Line],
    address: dict,
    clock: Clock,
    live_session_id: int | None,
    pin_id: int | None,
    idempotency_key: str | None,
) -> Order:
    rows = db.session.execute(
        select(Variant, Product)
        .join(Product, Variant.product_id == Product.id)
        .where(Variant.id.in_(lines))
    ).all()
    found = {variant.id: (variant, product) for variant, product in rows}
    missing = [vid for vid in lines if vid not in found or not found[vid][1].active]
    if missing:
        raise UnknownVariant(fields={"variant_id": [str(vid) for vid in missing]})
    for variant_id, line in lines.items():
        if found[variant_id][0].stock < line.quantity:
            raise SoldOut(variant_id)  # fast refusal only; the conditional UPDATE decides
    if address and buyer.saved_address != address:
        # Remembered for the next checkout, in the same transaction as the order.
        db.session.execute(
            update(User)
            .where(User.id == buyer.id)
            .values(saved_address=address)
            .execution_options(synchronize_session=False)
        )

    now = clock()
    minutes = current_app.config["RESERVATION_MINUTES"]
    order = Order(
        number=_new_number(now),
        buyer_id=buyer.id,
        status=OrderStatus.PENDING_PAYMENT,
        currency=current_app.config["CURRENCY"],
        address=address,
        live_session_id=live_session_id,
        pin_id=pin_id,
        idempotency_key=idempotency_key,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
        total=0,
    )
    for variant_id, line in lines.items():
        variant, product = found[variant_id]
        price = line.unit_price if line.unit_price is not None else variant.price
        order.items.append(
            OrderItem(
                variant_id=variant_id,
                product_id=product.id,
                cooperative_id=product.cooperative_id,
                name=f"{product.name} · {variant.name}",
                unit_price=price,
                quantity=line.quantity,
            )
        )
    order.total = sum(item.line_total for item in order.items)
    db.session.add(order)
    record(order, "placed", actor_id=buyer.id, at=now, data={"total": order.total})
    db.session.flush()
    return order


def _take_stock(variant_id: int, quantity: int) -> None:
    """Decrement stock only if enough is left: one statement, so no oversell under any race."""
    result = db.session.execute(
        update(Variant)
        .where(Variant.id == variant_id, Variant.stock >= quantity)
        .values(stock=Variant.stock - quantity)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise SoldOut(variant_id)


def _return_stock(order: Order) -> None:
    """Give an order's held stock back, exactly once (guarded by `holds_stock`)."""
    if not order.holds_stock:
        return
    restock(order.items)
    order.holds_stock = False


def restock(items: list[OrderItem]) -> dict[int, int]:
    """Put these items' units back on the shelf, in the caller's transaction (variant id order)."""
    returned: dict[int, int] = {}
    for item in sorted(items, key=lambda i: i.variant_id):
        db.session.execute(
            update(Variant)
            .where(Variant.id == item.variant_id)
            .values(stock=Variant.stock + item.quantity)
            .execution_options(synchronize_session=False)
        )
        returned[item.variant_id] = returned.get(item.variant_id, 0) + item.quantity
    return returned


def _new_number(now: datetime) -> str:
    """Human-readable and unique: FL + date + 6 unambiguous characters (~1e9 per day)."""
    suffix = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(6))
    return f"FL{now:%y%m%d}{suffix}"


def record(
    order: Order,
    kind: str,
    *,
    actor_id: int | None = None,
    message: str = "",
    data: dict | None = None,
    at: datetime | None = None,
) -> OrderEvent:
    """Append to the order's history, in the caller's transaction."""
    event = OrderEvent(
        kind=kind, actor_id=actor_id, message=message, data=data, created_at=at or utcnow()
    )
    order.events.append(event)
    return event


def lock_order(order_id: int) -> Order:
    """Load an order for change, locking its row on PostgreSQL (SQLite: BEGIN IMMEDIATE)."""
    begin_write()
    order = db.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        db.session.rollback()
        raise OrderNotFound()
    return order


def mark_paid(
    order_id: int,
    *,
    provider: str,
    reference: str | None = None,
    clock: Clock = utcnow,
    actor_id: int | None = None,
) -> Order:
    """Record a successful payment: the one code path for the demo provider and Stripe.

    Idempotent: an order already past `pending_payment` is returned unchanged. A payment that
    arrives after the order expired re-takes the stock when there is some; otherwise the caller
    must refund it (`Order.status` stays `cancelled` and the history says so).
    """
    order = lock_order(order_id)
    late_settled = order.status == OrderStatus.CANCELLED and order.refund_id is not None
    if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED) or late_settled:
        db.session.commit()
        return order
    now = clock()
    if order.status == OrderStatus.CANCELLED:
        if order.paid_at is not None or not _retake_stock(order):
            record(order, "late_payment_no_stock", data={"provider": provider, "ref": reference})
            db.session.commit()
            return order
        record(order, "late_payment_restocked", data={"provider": provider, "ref": reference})
    order.status = OrderStatus.PAID
    order.paid_at = now
    order.holds_stock = False  # the stock is now sold, not held
    order.payment_provider = provider
    if reference:
        order.payment_intent_id = order.payment_intent_id or reference
    for cooperative_id in sorted({item.cooperative_id for item in order.items}):
        order.shipments.append(Shipment(cooperative_id=cooperative_id, created_at=now))
    record(order, "paid", actor_id=actor_id, at=now, data={"provider": provider, "ref": reference})
    db.session.flush()
    # Ids taken before the commit, so the news below reloads nothing and holds no connection.
    order_id = order.id
    shipments = [(shipment.id, shipment.cooperative_id) for shipment in order.shipments]
    db.session.commit()
    app = current_app._get_current_object()
    signals.order_paid.send(app, order_id=order_id)
    signals.order_changed.send(app, order_id=order_id, status=OrderStatus.PAID.value)
    for shipment_id, cooperative_id in shipments:
        signals.shipment_changed.send(app, shipment_id=shipment_id, cooperative_id=cooperative_id)
    return order


def _retake_stock(order: Order) -> bool:
    """Take an expired order's stock again, all or nothing, inside the caller's transaction."""
    savepoint = db.session.begin_nested()
    try:
        for item in sorted(order.items, key=lambda i: i.variant_id):
            _take_stock(item.variant_id, item.quantity)
    except SoldOut:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def cancel_unpaid(
    order_id: int, *, actor_id: int | None, reason: str, clock: Clock = utcnow
) -> Order:
    """Cancel a `pending_payment` order and return its stock (buyer, admin or expiry)."""
    order = lock_order(order_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        db.session.rollback()
        raise InvalidTransition(
            f"Order {order.number} is {order.status}; only unpaid orders cancel."
        )
    now = clock()
    _return_stock(order)
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = now
    record(order, reason, actor_id=actor_id, at=now)
    db.session.commit()
    app = current_app._get_current_object()
    signals.stock_changed.send(app, variant_ids=[item.variant_id for item in order.items])
    signals.order_changed.send(app, order_id=order.id, status=order.status)
    return order


def claim_due(*conditions: Any, order_by: Any, limit: int) -> list[int]:
    """Ids of orders due for background work, oldest first. Rows locked by another runner are
    skipped (SKIP LOCKED on PostgreSQL); callers re-check each order under its own lock."""
    begin_write()
    ids = list(
        db.session.scalars(
            select(Order.id)
            .where(*conditions)
            .order_by(order_by)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    db.session.commit()
    return ids


def expire_due(*, clock: Clock = utcnow, limit: int = 200) -> int:
    """Cancel unpaid orders whose hold has passed; safe when several processes run it at once.

    Rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so two runners never release
    the same hold; each order is re-checked under its lock before anything changes.
    """
    now = clock()
    ids = claim_due(
        Order.status == OrderStatus.PENDING_PAYMENT,
        Order.expires_at <= now,
        order_by=Order.expires_at,
        limit=limit,
    )
    expired = 0
    for order_id in ids:
        try:
            cancel_unpaid(order_id, actor_id=None, reason="expired", clock=clock)
            expired += 1
        except InvalidTransition:
            continue  # paid or cancelled meanwhile
    return expired


def cancel_shipments(order: Order, *, at: datetime) -> list[Shipment]:
    """Take a refunded order's unshipped shipments out of the cooperatives' queues."""
    cancelled = []
    for shipment in order.shipments:
        if shipment.status in (ShipmentStatus.PENDING, ShipmentStatus.PACKED):
            shipment.status = ShipmentStatus.CANCELLED
            cancelled.append(shipment)
    return cancelled


def get_order(order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None:
        raise OrderNotFound()
    return order


def get_visible_order(user: User, order_id: int) -> Order:
    """The order if `user` may see it (its buyer, an admin); anyone else gets 404, not 403."""
    order = db.session.get(Order, order_id)
    if order is None or not (user.is_admin or order.buyer_id == user.id):
        raise OrderNotFound()
    return order


def list_orders(user: User, *, number: str | None = None, limit: int = 100) -> list[Order]:
    """A buyer's own orders, newest first; an admin sees everyone's and can search by number."""
    query = (
        select(Order)
        .options(selectinload(Order.items), selectinload(Order.shipments))
        .order_by(Order.id.desc())
        .limit(limit)
    )
    if not user.is_admin:
        query = query.where(Order.buyer_id == user.id)
    if number:
        query = query.where(Order.number == number.strip().upper())
    return list(db.session.scalars(query))
