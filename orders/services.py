"""The order service: the only code that changes stock and order state.

Every function owns its transaction, writes an order event with each change, and announces
what happened (shop.signals) only after the commit succeeded.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from orders.errors import (
    InvalidTransition,
    LimitExceeded,
    OrderNotFound,
    SoldOut,
    TooManyUnpaid,
    UnknownVariant,
)
from orders.models import (
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    RefundStatus,
    Shipment,
    ShipmentStatus,
)
from shop import signals
from shop.database import begin_write, commit_keeping_loaded, commit_with
from shop.errors import Invalid
from shop.extensions import db
from shop.i18n import N_
from shop.models import Product, User, Variant, utcnow

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
_NUMBER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud on the phone


MAX_LINE_QUANTITY = 99  # per variant, after the lines for one variant are merged
#: Orders whose units count against a pin's per-buyer limit: they hold or sold the stock.
COUNTING = (
    OrderStatus.PENDING_PAYMENT.value,
    OrderStatus.PAID.value,
    OrderStatus.SHIPPED.value,
    OrderStatus.DELIVERED.value,
)


@dataclass(frozen=True)
class Line:
    """One requested line. `unit_price` is set by server code only (a pin's live price)."""

    variant_id: int
    quantity: int
    unit_price: int | None = None


@dataclass(frozen=True)
class PinLimit:
    """A pin's per-buyer limit that an order's units count against: the buyer's units of the
    pinned product in orders under `pin_id` that still count (COUNTING) stay within `limit`."""

    pin_id: int
    product_id: int
    limit: int


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
    pin_limit: PinLimit | None = None,
) -> tuple[Order, bool]:
    """Create a `pending_payment` order that holds its stock until `expires_at`; (order, created).

    All or nothing, in one transaction (joining a write the caller began). The buyer's row is
    locked first, so one buyer's orders are placed one at a time: the count of their unpaid
    orders (MAX_UNPAID_ORDERS) and of their units under a pin's per-buyer limit (`pin_limit`;
    for a cart order, the limits `signals.placing_order` names) is then exact. The order and its
    items are inserted, and the `placed` event and each variant's stock go last, together with
    the COMMIT (`commit_with`), so a hot variant's row stays locked only inside the database.
    With an `idempotency_key`, the same key from the same buyer returns the same order with
    `created` False: the unique (buyer, key) index decides, so the usual new tap costs no lookup.
    """
    merged = _merge_lines(lines)
    begin_write()
    try:
        found = _variants(merged)
        if pin_limit is None and live_session_id is None:
            pin_limit = _cart_pin_limit(buyer.id, merged)
            pin_id = pin_limit.pin_id if pin_limit else pin_id
        _hold_buyer(buyer.id, merged, found, pin_limit)
        now = clock()
        order, items = _insert_order(
            buyer, merged, found, address, now, live_session_id, pin_id, idempotency_key
        )
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
# FOR NO KEY UPDATE: serialises this buyer's placements without blocking the KEY SHARE lock
# that any row referring to the buyer takes (an order event of a cancel holding a variant's
# row lock, say), which a plain FOR UPDATE would turn into a deadlock.
_LOCK_BUYER = (
    select(User.__table__.c.id)
    .where(User.__table__.c.id == bindparam("buyer_id"))
    .with_for_update(key_share=True)
)
_UNPAID = (
    select(func.count())
    .select_from(_ORDER)
    .where(
        _ORDER.c.buyer_id == bindparam("buyer_id"),
        _ORDER.c.status == OrderStatus.PENDING_PAYMENT.value,
    )
    .scalar_subquery()
)
_UNITS_UNDER_PIN = (
    select(func.coalesce(func.sum(_ITEM.c.quantity), 0))
    .select_from(_ORDER.join(_ITEM, _ITEM.c.order_id == _ORDER.c.id))
    .where(
        _ORDER.c.buyer_id == bindparam("buyer_id"),
        _ORDER.c.pin_id == bindparam("pin_id"),
        _ORDER.c.status.in_(COUNTING),
        _ITEM.c.product_id == bindparam("product_id"),
    )
    .scalar_subquery()
)
_BUYER_COUNTS = select(_UNPAID, _UNITS_UNDER_PIN)
_BUYER_UNPAID = select(_UNPAID)
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
    """One line per variant, in id order so concurrent orders lock rows in the same order; the
    per-line cap holds after merging (two lines of 60 are one line of 120, refused)."""
    merged: dict[int, Line] = {}
    for line in lines:
        previous = merged.get(line.variant_id)
        quantity = line.quantity + (previous.quantity if previous else 0)
        merged[line.variant_id] = Line(line.variant_id, quantity, line.unit_price)
    over = [str(vid) for vid, line in merged.items() if line.quantity > MAX_LINE_QUANTITY]
    if over:
        message = N_("At most 99 of one product per order.")
        raise Invalid(message, fields={"items": {vid: [message] for vid in over}})
    return dict(sorted(merged.items()))


def _hold_buyer(
    buyer_id: int, lines: dict[int, Line], found: dict[int, Any], pin_limit: PinLimit | None
) -> None:
    """Lock the buyer's row for the rest of the order's transaction, then count what they hold.

    The count is a statement of its own, after the lock: on PostgreSQL (READ COMMITTED) it
    sees every order this buyer placed or left until the lock was granted, so two taps of one
    buyer can never both slip under a limit. SQLite's BEGIN IMMEDIATE serialises all writers.
    """
    db.session.execute(_LOCK_BUYER, {"buyer_id": buyer_id})
    if pin_limit is None:
        unpaid, units = db.session.execute(_BUYER_UNPAID, {"buyer_id": buyer_id}).scalar(), 0
    else:
        unpaid, units = db.session.execute(
            _BUYER_COUNTS,
            {
                "buyer_id": buyer_id,
                "pin_id": pin_limit.pin_id,
                "product_id": pin_limit.product_id,
            },
        ).one()
    if unpaid >= current_app.config["MAX_UNPAID_ORDERS"]:
        raise TooManyUnpaid()
    if pin_limit is not None:
        wanted = sum(
            line.quantity
            for vid, line in lines.items()
            if found[vid].product_id == pin_limit.product_id
        )
        if units + wanted > pin_limit.limit:
            raise LimitExceeded(left=max(pin_limit.limit - units, 0))


def _cart_pin_limit(buyer_id: int, lines: dict[int, Line]) -> PinLimit | None:
    """The per-buyer limit of a pin that features one of a cart order's variants right now
    (asked of whoever runs pins, through `signals.placing_order`)."""
    app = current_app._get_current_object()
    limits = {
        limit.pin_id: limit
        for _receiver, answer in signals.placing_order.send(
            app, buyer_id=buyer_id, variant_ids=list(lines)
        )
        for limit in answer or ()
    }
    if len(limits) > 1:
        raise LimitExceeded(N_("Products on live offer are bought one live offer at a time."))
    return next(iter(limits.values()), None)


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
                # A live price never exceeds the regular one, even one lowered during the pin.
                "unit_price": row.price
                if line.unit_price is None
                else min(line.unit_price, row.price),
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


_LOCK_ORDER = (
    select(Order)
    .where(Order.id == bindparam("order_id"))
    .with_for_update()
    .options(selectinload(Order.items), selectinload(Order.shipments))
    .execution_options(populate_existing=True)
)


def flag(order_id: int, why: str, data: dict) -> None:
    """Flag an order for the admin (`Order.attention`) and say why in its history; nothing
    else about it changes."""
    order = lock_order(order_id)
    order.attention = why
    record(order, why, data=data)
    db.session.commit()
    log.warning("order %s flagged for the admin: %s %s", order_id, why, data)


def last_event(order_id: int, kind: str) -> OrderEvent | None:
    """The order's latest event of this kind, read now (not from a loaded history)."""
    return db.session.scalar(
        select(OrderEvent)
        .where(OrderEvent.order_id == order_id, OrderEvent.kind == kind)
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )


def lock_order(order_id: int) -> Order:
    """Load an order for change under its row lock, as the database has it now.

    The read refreshes the order, its items and its shipments even when this session loaded
    them before (`populate_existing`): a lock is only a compare-and-set if the state it
    compares is the one it locked. Whoever waited for the lock therefore sees what the
    previous holder committed, and `require` refuses a change that no longer applies.
    On SQLite, BEGIN IMMEDIATE (`begin_write`) serialises the whole write instead.
    """
    begin_write()
    order = db.session.scalar(_LOCK_ORDER, {"order_id": order_id})
    if order is None:
        db.session.rollback()
        raise OrderNotFound()
    return order


def require(order: Order, *allowed: str, action: str) -> None:
    """The compare of compare-and-set: refuse (409, transaction rolled back) unless the locked
    order is in one of the `allowed` states."""
    if order.status not in allowed:
        db.session.rollback()
        raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot {action}.")


class Payment(StrEnum):
    """What a payment did to its order (`apply_payment`)."""

    PAID = "paid"  # the order is now paid (on time, or late with its stock taken again)
    ALREADY = "already"  # a repeat: the order had this payment's outcome before
    REFUND_DUE = "refund_due"  # late, no stock left: this caller must refund the payment


def mark_paid(
    order_id: int,
    *,
    provider: str,
    reference: str | None = None,
    clock: Clock = utcnow,
    actor_id: int | None = None,
) -> Order:
    """Record a successful payment (see `apply_payment`); the order as it is afterwards."""
    order, _outcome = apply_payment(
        order_id, provider=provider, reference=reference, clock=clock, actor_id=actor_id
    )
    return order


def apply_payment(
    order_id: int,
    *,
    provider: str,
    reference: str | None = None,
    clock: Clock = utcnow,
    actor_id: int | None = None,
) -> tuple[Order, Payment]:
    """Record a successful payment: the one code path for the demo provider and Stripe.

    Under the order's lock, exactly one caller moves it: `pending_payment` becomes `paid`. A
    payment that lost to a cancel or an expiry takes the stock again when there is some (and
    the order is paid), or claims the refund (`refund_status` pending) that the one caller
    told REFUND_DUE must then make. Every later call is ALREADY and changes nothing.
    """
    order = lock_order(order_id)
    late = order.status == OrderStatus.CANCELLED
    if not (order.status == OrderStatus.PENDING_PAYMENT or (late and _unsettled_late(order))):
        db.session.commit()
        return order, Payment.ALREADY
    now = clock()
    data = {"provider": provider, "ref": reference}
    if late and not _retake_stock(order):
        order.payment_provider = provider
        order.payment_intent_id = order.payment_intent_id or reference
        order.refund_status = RefundStatus.PENDING
        record(order, "late_payment_no_stock", at=now, data=data)
        db.session.commit()
        return order, Payment.REFUND_DUE
    if late:
        record(order, "late_payment_restocked", at=now, data=data)
    order.status = OrderStatus.PAID
    order.paid_at = now
    order.holds_stock = False  # the stock is now sold, not held
    order.payment_provider = provider
    if reference:
        order.payment_intent_id = order.payment_intent_id or reference
    for cooperative_id in sorted({item.cooperative_id for item in order.items}):
        order.shipments.append(Shipment(cooperative_id=cooperative_id, created_at=now))
    record(order, "paid", actor_id=actor_id, at=now, data=data)
    db.session.flush()
    order_id = order.id
    shipments = [(shipment.id, shipment.cooperative_id) for shipment in order.shipments]
    # The news below (the sale, the shipments) and the answer are built from what this
    # transaction loaded and wrote, under the order's lock: nothing is read back.
    commit_keeping_loaded()
    app = current_app._get_current_object()
    if late:
        signals.stock_changed.send(app, variant_ids=[item.variant_id for item in order.items])
    signals.order_paid.send(app, order_id=order_id)
    signals.order_changed.send(app, order_id=order_id, status=OrderStatus.PAID.value)
    for shipment_id, cooperative_id in shipments:
        signals.shipment_changed.send(app, shipment_id=shipment_id, cooperative_id=cooperative_id)
    return order, Payment.PAID


def _unsettled_late(order: Order) -> bool:
    """A cancelled order whose late payment has not yet been taken (restocked or refunded)."""
    return order.paid_at is None and order.refund_status is None and order.refund_id is None


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
    """Cancel a `pending_payment` order and return its stock (buyer, admin or expiry).

    Exactly one caller wins (`require` under the refreshed lock); only the winner restocks,
    records and announces. The buyer's units under a pin stop counting with the status.
    """
    order = lock_order(order_id)
    require(order, OrderStatus.PENDING_PAYMENT, action="be cancelled")
    now = clock()
    _return_stock(order)
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = now
    record(order, reason, actor_id=actor_id, at=now)
    variant_ids = [item.variant_id for item in order.items]
    db.session.commit()
    app = current_app._get_current_object()
    signals.stock_changed.send(app, variant_ids=variant_ids)
    signals.order_changed.send(app, order_id=order.id, status=order.status)
    return order


def claim_due(*conditions: Any, order_by: Any, limit: int) -> list[int]:
    """Ids of orders due for background work, oldest first. Rows locked by another runner are
    skipped (SKIP LOCKED on PostgreSQL); callers re-check each order under its own lock.

    The claim ends with its commit, so it only spreads work that is cheap to re-check
    (auto-delivery). Expiry keeps its claim instead: `expire_due`.
    """
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


#: Holds released per transaction: a batch's rows stay locked only while it runs, and a backlog
#: of thousands still takes few round trips.
EXPIRY_BATCH = 50
#: Holds one `expire_due` call releases at most, so a pass leaves its loop time for other work.
EXPIRY_LIMIT = 2000
#: What `expire_due` hands the expired orders whose Stripe intent is still open (their ids).
IntentCanceller = Callable[[list[int]], object]

# Stock an expired batch gives back: one statement per variant, in variant id order, sent
# with the COMMIT (`commit_with`), like the stock a placement takes.
_GIVE_BACK = (
    update(_VARIANT)
    .where(_VARIANT.c.id == bindparam("variant_id"))
    .values(stock=_VARIANT.c.stock + bindparam("units"))
)


@dataclass(frozen=True)
class _Expired:
    """What one committed batch changed, as ids: for the news and the intent cancels."""

    order_ids: list[int]
    variant_ids: list[int]
    with_intent: list[int]


def expire_due(
    *,
    clock: Clock = utcnow,
    limit: int = EXPIRY_LIMIT,
    batch_size: int = EXPIRY_BATCH,
    cancel_intents: IntentCanceller | None = None,
) -> int:
    """Cancel unpaid orders whose hold has passed, batch by batch; how many were expired.

    Each batch is claimed and cancelled in one transaction (`_expire_batch`), so its rows stay
    locked until it commits: a second runner skips them (SKIP LOCKED) and takes the next due
    rows instead of queuing behind them, and each hold is released once. Batches go on until
    none is due or `limit` is reached. The expired orders' Stripe intents are cancelled only
    after the last batch, by `cancel_intents` (default: here, one after another; the server's
    loop hands them to a worker), so a slow provider never delays a hold's release. A batch
    that fails leaves the ones committed before it, and their intents are still cancelled.
    """
    expired, with_intent = 0, []
    try:
        while expired < limit:
            batch = _expire_batch(clock, min(batch_size, limit - expired))
            if not batch.order_ids:
                break
            expired += len(batch.order_ids)
            with_intent += batch.with_intent
    finally:
        if with_intent:
            (cancel_intents or _cancel_intents_now)(with_intent)
    return expired


def _expire_batch(clock: Clock, size: int) -> _Expired:
    """Claim up to `size` due holds and cancel them in the transaction that holds the claim.

    The claim is the compare of compare-and-set: it selects only `pending_payment` orders
    whose hold has passed, under their row locks (FOR UPDATE SKIP LOCKED; on SQLite, BEGIN
    IMMEDIATE serialises the write). The stock goes back per variant in id order with the
    COMMIT, not order by order: two batches (or a batch and a buyer's cancel) then lock
    variant rows in the same order and never deadlock, and a hot variant is locked only
    inside the database. News follows the commit; `reason="expired"` tells the intent
    canceller on `order_changed` that `expire_due` sees to the intents itself.
    """
    begin_write()
    try:
        now = clock()
        orders = db.session.scalars(
            select(Order)
            .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)
            .order_by(Order.expires_at)
            .limit(size)
            .with_for_update(skip_locked=True)
            .options(selectinload(Order.items), selectinload(Order.events))
        ).all()
        returned: dict[int, int] = {}
        for order in orders:
            if order.holds_stock:  # the guard of `_return_stock`, for the whole batch
                for item in order.items:
                    returned[item.variant_id] = returned.get(item.variant_id, 0) + item.quantity
                order.holds_stock = False
            order.status = OrderStatus.CANCELLED
            order.cancelled_at = now
            record(order, "expired", at=now)
        batch = _Expired(
            order_ids=[order.id for order in orders],
            variant_ids=sorted(returned),
            with_intent=[order.id for order in orders if _intent_open(order)],
        )
        commit_with(
            *[(_GIVE_BACK, {"variant_id": vid, "units": returned[vid]}) for vid in sorted(returned)]
        )
    except Exception:
        db.session.rollback()
        raise
    if batch.order_ids:
        app = current_app._get_current_object()
        if batch.variant_ids:
            signals.stock_changed.send(app, variant_ids=batch.variant_ids)
        for order_id in batch.order_ids:
            signals.order_changed.send(
                app, order_id=order_id, status=OrderStatus.CANCELLED.value, reason="expired"
            )
    return batch


def _intent_open(order: Order) -> bool:
    """Whether the buyer could still pay this order at Stripe (an intent nobody cancelled)."""
    return (
        order.payment_provider == "stripe"
        and order.payment_intent_id is not None
        and order.paid_at is None
    )


def _cancel_intents_now(order_ids: list[int]) -> None:
    """`expire_due`'s default: cancel the intents here, once every batch has committed (the
    CLI, tests). One that fails is logged: the orders are expired whatever Stripe says."""
    from orders.payments import cancel_intent  # payments builds on this module

    for order_id in order_ids:
        try:
            cancel_intent(order_id)
        except Exception:
            db.session.rollback()
            log.exception("cancelling the intent of expired order %s failed", order_id)


def cancel_shipments(order: Order, *, at: datetime) -> list[Shipment]:
    """Take a refunded order's unshipped shipments out of the cooperatives' queues."""
    cancelled = []
    for shipment in order.shipments:
        if shipment.status in (ShipmentStatus.PENDING, ShipmentStatus.PACKED):
            shipment.status = ShipmentStatus.CANCELLED
            cancelled.append(shipment)
    return cancelled


def get_order(order_id: int, *, fresh: bool = False) -> Order:
    """The order; `fresh` reads it again even when this session loaded it before."""
    order = db.session.get(Order, order_id, populate_existing=fresh)
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
