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
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from orders.errors import InvalidTransition, OrderNotFound, SoldOut, UnknownVariant
from orders.models import Order, OrderEvent, OrderItem, OrderStatus, Shipment, ShipmentStatus
from shop import signals
from shop.database import begin_write, commit_with
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


def place_order(buyer: User, lines: list[Line], address: dict, **options: Any) -> Order:
    """Create a `pending_payment` order that holds its stock until `expires_at`: `place`
    without the `created` flag (a repeated Idempotency-Key returns the first order)."""
    order, _created = place(buyer, lines, address, **options)
    return order


def place(
    buyer: User,
    lines: list[Line],
    address: dict,
    *,
    clock: Clock = utcnow,
    live_session_id: int | None = None,
    pin_id: int | None = None,
    idempotency_key: str | None = None,
    guard: Callable[[int], None] | None = None,
) -> tuple[Order, bool]:
    """Create a `pending_payment` order that holds its stock until `expires_at`; (order, created).

    All or nothing, in one transaction (joining a write the caller began): the order and its
    items are inserted, `guard(order_id)` runs (live checkout counts the buyer's units under the
    pin there and may raise to undo everything), then the `placed` event and each variant's
    stock go last, together with the COMMIT (`commit_with`), so a hot variant's row stays locked
    only inside the database. With an `idempotency_key`, the same key from the same buyer
    returns the same order with `created` False: the unique (buyer, key) index decides, so the
    usual new tap costs no lookup.
    """
    merged = _merge_lines(lines)
    begin_write()
    try:
        found = _variants(merged)
        now = clock()
        order, items = _insert_order(
            buyer, merged, found, address, now, live_session_id, pin_id, idempotency_key
        )
        if guard is not None:
            guard(order["id"])
        placed = {
            "order_id": order["id"],
            "kind": "placed",
            "actor_id": buyer.id,
            "message": "",
            "data": {"total": order["total"]},
            "created_at": now,
        }
        commit_with(
            (_INSERT_EVENT, placed),
            *[
                (_TAKE_STOCK, {"variant_id": vid, "units": line.quantity})
                for vid, line in merged.items()
            ],
        )
    except IntegrityError as err:
        db.session.rollback()
        if _STOCK_CHECK in str(err.orig):
            raise _shortage(merged) from None
        existing = find_by_key(buyer.id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    except Exception:
        db.session.rollback()
        raise
    app = current_app._get_current_object()
    signals.stock_changed.send(app, variant_ids=list(merged))
    signals.order_changed.send(app, order_id=order["id"], status=order["status"])
    return _attach(order, items), True


# Statements built once (the checkout path runs them hundreds of times a second).
_VARIANT, _PRODUCT = Variant.__table__, Product.__table__
_ORDER, _ITEM, _EVENT = Order.__table__, OrderItem.__table__, OrderEvent.__table__
_VARIANTS = (
    select(
        _VARIANT.c.id,
        _VARIANT.c.name,
        _VARIANT.c.price,
        _VARIANT.c.stock,
        _PRODUCT.c.id.label("product_id"),
        _PRODUCT.c.name.label("product_name"),
        _PRODUCT.c.cooperative_id,
        _PRODUCT.c.active,
    )
    .join(_PRODUCT, _VARIANT.c.product_id == _PRODUCT.c.id)
    .where(_VARIANT.c.id.in_(bindparam("variant_ids", expanding=True)))
)
_BY_KEY = select(_ORDER.c.id).where(
    _ORDER.c.buyer_id == bindparam("buyer_id"), _ORDER.c.idempotency_key == bindparam("key")
)
_INSERT_ORDER = insert(_ORDER).returning(_ORDER.c.id)
_INSERT_ITEM = insert(_ITEM).returning(_ITEM.c.id)
_INSERT_ITEMS = insert(_ITEM).returning(_ITEM.c.id, sort_by_parameter_order=True)
_INSERT_EVENT = insert(_EVENT).inline()  # reads nothing back: it runs in the commit pipeline
_SAVE_ADDRESS = (
    update(User.__table__)
    .where(User.__table__.c.id == bindparam("buyer_id"))
    .values(saved_address=bindparam("address"))
)
# The stock statement: `stock >= 0` is a CHECK constraint on the variant, so the database itself
# refuses a decrement below zero, atomically under the row lock (no read-then-write here). That
# is what lets the statement travel with the COMMIT: a shortage fails the whole transaction.
_TAKE_STOCK = (
    update(_VARIANT)
    .where(_VARIANT.c.id == bindparam("variant_id"))
    .values(stock=_VARIANT.c.stock - bindparam("units"))
)
_STOCK_CHECK = "stock_not_negative"


def find_by_key(buyer_id: int, key: str) -> Order | None:
    """The buyer's order placed with this Idempotency-Key, if any (an index lookup first: on the
    refusal path of a flash sale almost every answer is "none")."""
    order_id = db.session.execute(_BY_KEY, {"buyer_id": buyer_id, "key": key}).scalar()
    return db.session.get(Order, order_id) if order_id is not None else None


def _merge_lines(lines: list[Line]) -> dict[int, Line]:
    """One line per variant, in id order so concurrent orders lock rows in the same order."""
    merged: dict[int, Line] = {}
    for line in lines:
        previous = merged.get(line.variant_id)
        quantity = line.quantity + (previous.quantity if previous else 0)
        merged[line.variant_id] = Line(line.variant_id, quantity, line.unit_price)
    return dict(sorted(merged.items()))


def _variants(lines: dict[int, Line]) -> dict[int, Any]:
    """The lines' variants with their products; unknown or inactive ones and a visible
    shortage are refused here, before anything is written."""
    rows = db.session.execute(_VARIANTS, {"variant_ids": list(lines)}).all()
    found = {row.id: row for row in rows}
    missing = [vid for vid in lines if vid not in found or not found[vid].active]
    if missing:
        raise UnknownVariant(fields={"variant_id": [str(vid) for vid in missing]})
    for variant_id, line in lines.items():
        if found[variant_id].stock < line.quantity:
            # A fast refusal only; the stock statement decides.
            raise SoldOut(variant_id, left=found[variant_id].stock)
    return found


def _insert_order(
    buyer: User,
    lines: dict[int, Line],
    found: dict[int, Any],
    address: dict,
    now: datetime,
    live_session_id: int | None,
    pin_id: int | None,
    idempotency_key: str | None,
) -> tuple[dict, list[dict]]:
    """Insert the order and its items; their rows as dicts."""
    items = []
    for variant_id, line in lines.items():
        row = found[variant_id]
        items.append(
            {
                "variant_id": variant_id,
                "product_id": row.product_id,
                "cooperative_id": row.cooperative_id,
                "name": f"{row.product_name} · {row.name}",
                "unit_price": line.unit_price if line.unit_price is not None else row.price,
                "quantity": line.quantity,
            }
        )
    order = {
        "number": _new_number(now),
        "buyer_id": buyer.id,
        "status": OrderStatus.PENDING_PAYMENT.value,
        "total": sum(item["unit_price"] * item["quantity"] for item in items),
        "currency": current_app.config["CURRENCY"],
        "address": address,
        "live_session_id": live_session_id,
        "pin_id": pin_id,
        "idempotency_key": idempotency_key,
        "created_at": now,
        "expires_at": now + timedelta(minutes=current_app.config["RESERVATION_MINUTES"]),
        "refunded_amount": 0,
        "holds_stock": True,
    }
    order["id"] = db.session.execute(_INSERT_ORDER, order).scalar_one()
    for item in items:
        item["order_id"] = order["id"]
    if len(items) == 1:  # the live checkout's case: one plain statement
        items[0]["id"] = db.session.execute(_INSERT_ITEM, items[0]).scalar_one()
    else:
        ids = db.session.execute(_INSERT_ITEMS, items).scalars()
        for item, item_id in zip(items, ids, strict=True):
            item["id"] = item_id
    if address and buyer.saved_address != address:
        # Remembered for the next checkout, in the same transaction as the order.
        db.session.execute(_SAVE_ADDRESS, {"buyer_id": buyer.id, "address": address})
    return order, items


def _attach(order: dict, items: list[dict]) -> Order:
    """The committed order as a loaded ORM object, built from the rows just inserted: no
    reload. Its events are left to load on first use."""
    loaded = _loaded(Order, order)
    set_committed_value(loaded, "items", [_loaded(OrderItem, item) for item in items])
    set_committed_value(loaded, "shipments", [])
    db.session.add(loaded)
    return loaded


def _loaded(model: type, row: dict) -> Any:
    instance = model(**{column.key: row.get(column.key) for column in model.__table__.columns})
    make_transient_to_detached(instance)
    return instance


def _shortage(lines: dict[int, Line]) -> SoldOut:
    """After a shortage rolled the order back: SoldOut for the first line short now."""
    stock = dict(
        db.session.execute(
            select(_VARIANT.c.id, _VARIANT.c.stock).where(_VARIANT.c.id.in_(lines))
        ).all()
    )
    short = [vid for vid, line in lines.items() if stock.get(vid, 0) < line.quantity]
    variant_id = short[0] if short else next(iter(lines))
    return SoldOut(variant_id, left=stock.get(variant_id))


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
            db.session.execute(_TAKE_STOCK, {"variant_id": item.variant_id, "units": item.quantity})
    except IntegrityError as err:
        savepoint.rollback()
        if _STOCK_CHECK in str(err.orig):
            return False
        raise
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
