"""Cooperative fulfilment: list, pick, pack, ship and deliver the shipments of paid orders.

Every change goes through the order's row lock (`orders.services.lock_order`), writes an order
event, and is announced (shop.signals) only after the commit. Fulfilment never changes stock
itself: the dashboard's stock form goes through `shop.services.update_variant`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import and_, func, select
from sqlalchemy.orm import selectinload

from orders.errors import InvalidTransition, OrderNotFound
from orders.fulfilment import csvio
from orders.fulfilment.errors import InvalidCsv, ShipmentNotFound
from orders.models import (
    Order,
    OrderItem,
    OrderStatus,
    RefundStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import Clock, claim_due, lock_order, record
from shop import signals
from shop.database import begin_write
from shop.errors import Forbidden, Invalid, NotFound
from shop.extensions import db
from shop.i18n import N_
from shop.models import Cooperative, Product, Role, User, Variant, utcnow

OPEN = (ShipmentStatus.PENDING.value, ShipmentStatus.PACKED.value)
_TRACE_SALT = "farmlive-trace"


def cooperative_scope(user: User, cooperative_id: int | None = None) -> int | None:
    """Whose shipments `user` handles: a coop member their own; an admin the one asked, or all."""
    if user.role == Role.COOP and user.cooperative_id is not None:
        return user.cooperative_id  # a member of no cooperative must not fall through to "all"
    if user.role == Role.ADMIN:
        return cooperative_id
    raise Forbidden(N_("Only cooperative members and admins handle shipments."))


def list_shipments(
    user: User,
    *,
    statuses: Iterable[str] | None = None,
    live_session_id: int | None = None,
    cooperative_id: int | None = None,
    limit: int = 1000,
) -> list[Shipment]:
    """The queue, oldest first; cancelled shipments only when asked for by status."""
    scope = cooperative_scope(user, cooperative_id)
    query = (
        select(Shipment)
        .join(Order, Order.id == Shipment.order_id)
        .options(selectinload(Shipment.order).selectinload(Order.items))
        .order_by(Shipment.id)
        .limit(limit)
    )
    if scope is not None:
        query = query.where(Shipment.cooperative_id == scope)
    if statuses:
        query = query.where(Shipment.status.in_(list(statuses)))
    else:
        query = query.where(Shipment.status != ShipmentStatus.CANCELLED)
    if live_session_id is not None:
        query = query.where(Order.live_session_id == live_session_id)
    return list(db.session.scalars(query))


def get_shipment(user: User, shipment_id: int) -> Shipment:
    """One shipment of the user's cooperative; another cooperative's is 404, not 403."""
    scope = cooperative_scope(user)
    shipment = db.session.get(Shipment, shipment_id)
    if shipment is None or (scope is not None and shipment.cooperative_id != scope):
        raise ShipmentNotFound()
    return shipment


@dataclass(frozen=True)
class PickLine:
    variant_id: int
    product_name: str
    variant_name: str
    quantity: int


def pick_list(
    user: User, *, live_session_id: int | None = None, cooperative_id: int | None = None
) -> list[PickLine]:
    """What to take from the cold store: quantities per variant over shipments not yet shipped."""
    scope = cooperative_scope(user, cooperative_id)
    query = (
        select(OrderItem.variant_id, Product.name, Variant.name, func.sum(OrderItem.quantity))
        .join(
            Shipment,
            and_(
                Shipment.order_id == OrderItem.order_id,
                Shipment.cooperative_id == OrderItem.cooperative_id,
            ),
        )
        .join(Variant, Variant.id == OrderItem.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(Shipment.status.in_(OPEN))
        .group_by(OrderItem.variant_id, Product.name, Variant.name)
        .order_by(Product.name, Variant.name, OrderItem.variant_id)
    )
    if scope is not None:
        query = query.where(Shipment.cooperative_id == scope)
    if live_session_id is not None:
        query = query.join(Order, Order.id == Shipment.order_id).where(
            Order.live_session_id == live_session_id
        )
    return [
        PickLine(vid, pname, vname, int(qty))
        for vid, pname, vname, qty in db.session.execute(query)
    ]


def pack(user: User, shipment_id: int, *, clock: Clock = utcnow) -> Shipment:
    """pending → packed."""
    shipment = _lock_shipment(user, shipment_id)
    try:
        _require(shipment, (ShipmentStatus.PENDING,), "be packed")
        now = clock()
        shipment.status = ShipmentStatus.PACKED
        shipment.packed_at = now
        record(shipment.order, "shipment_packed", actor_id=user.id, at=now, data=_ids(shipment))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce([shipment], [])
    return shipment


def ship(
    user: User, shipment_id: int, *, carrier: str, tracking_number: str, clock: Clock = utcnow
) -> Shipment:
    """pending or packed → shipped; the order is `shipped` once all its shipments are."""
    _check_tracking(carrier, tracking_number)
    shipment = _lock_shipment(user, shipment_id)
    try:
        order_moved = _apply_ship(shipment, carrier, tracking_number, user.id, clock())
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce([shipment], [shipment.order] if order_moved else [])
    return shipment


def ship_from_csv(
    user: User, data: bytes, *, cooperative_id: int | None = None, clock: Clock = utcnow
) -> list[Shipment]:
    """Ship many at once from a courier file; any bad line and nothing at all is applied."""
    scope = cooperative_scope(user, cooperative_id)
    if scope is None:
        raise Invalid(fields={"cooperative_id": [N_("Choose the cooperative the file ships for.")]})
    rows, errors = csvio.read_ship_rows(data)
    begin_write()
    try:
        numbers = sorted({row.order_number for row in rows})
        orders = {
            order.number: order
            for order in db.session.scalars(
                select(Order)
                .where(Order.number.in_(numbers))
                .order_by(Order.id)
                .with_for_update()
                .options(selectinload(Order.items), selectinload(Order.shipments))
                .execution_options(populate_existing=True)
            )
        }
        chosen: list[tuple[csvio.ShipRow, Shipment]] = []
        for row in rows:
            shipment = _csv_shipment(row, orders.get(row.order_number), scope, errors)
            if shipment is not None:
                chosen.append((row, shipment))
        if errors:
            raise InvalidCsv(fields={"file": {str(n): errors[n] for n in sorted(errors)}})
        now = clock()
        moved = [
            shipment.order
            for row, shipment in chosen
            if _apply_ship(shipment, row.carrier, row.tracking_number, user.id, now)
        ]
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce([shipment for _, shipment in chosen], moved)
    return [shipment for _, shipment in chosen]


def confirm_receipt(user: User, order_id: int, *, clock: Clock = utcnow) -> Order:
    """The buyer says the parcel arrived: order shipped → delivered, with its shipments."""
    if user.role in (Role.COOP, Role.HOST):
        raise Forbidden(N_("Only the buyer confirms receipt."))
    order = lock_order(order_id)
    try:
        if order.buyer_id != user.id:
            if user.role == Role.ADMIN:
                raise Forbidden(N_("Only the buyer confirms receipt."))
            raise OrderNotFound()
        if order.status != OrderStatus.SHIPPED:
            raise InvalidTransition(f"Order {order.number} is {order.status}, not shipped.")
        delivered = _deliver(order, clock(), actor_id=user.id, kind="receipt_confirmed")
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce(delivered, [order])
    return order


def auto_deliver_due(*, clock: Clock = utcnow, limit: int = 200) -> int:
    """Deliver orders shipped more than AUTO_DELIVER_DAYS ago; safe to run in several processes."""
    now = clock()
    cutoff = now - timedelta(days=current_app.config["AUTO_DELIVER_DAYS"])
    ids = claim_due(
        Order.status == OrderStatus.SHIPPED,
        Order.shipped_at <= cutoff,
        order_by=Order.shipped_at,
        limit=limit,
    )
    count = 0
    for order_id in ids:
        order = lock_order(order_id)
        if order.status != OrderStatus.SHIPPED or order.shipped_at > cutoff:
            db.session.rollback()  # confirmed by the buyer meanwhile
            continue
        delivered = _deliver(order, now, actor_id=None, kind="delivered_automatically")
        db.session.commit()
        _announce(delivered, [order])
        count += 1
    return count


def cooperative_variants(user: User, cooperative_id: int | None = None) -> list[Variant]:
    """The variants whose stock the dashboard lets this user adjust (low ones flagged there)."""
    scope = cooperative_scope(user, cooperative_id)
    if scope is None:
        return []
    return list(
        db.session.scalars(
            select(Variant)
            .join(Product, Product.id == Variant.product_id)
            .where(Product.cooperative_id == scope, Product.active.is_(True))
            .options(selectinload(Variant.product))
            .order_by(Product.name, Variant.id)
        )
    )


def trace_token(order_id: int) -> str:
    """An unguessable, stable token for the public trace page (signed with SECRET_KEY)."""
    return URLSafeSerializer(current_app.secret_key, salt=_TRACE_SALT).dumps(order_id)


def traced_shipments(token: str) -> list[dict]:
    """What the public may know of an order: who packed and shipped what, when; no buyer data."""
    try:
        order_id = URLSafeSerializer(current_app.secret_key, salt=_TRACE_SALT).loads(token)
    except BadSignature:
        raise NotFound(N_("No such parcel.")) from None
    order = db.session.get(Order, order_id) if isinstance(order_id, int) else None
    if order is None or not order.shipments:
        raise NotFound(N_("No such parcel."))
    product_ids = {item.product_id for item in order.items}
    query = select(Product.id, Product.name).where(Product.id.in_(product_ids))
    names = dict(db.session.execute(query).tuples().all())
    result = []
    for shipment in order.shipments:
        cooperative = db.session.get(Cooperative, shipment.cooperative_id)
        result.append(
            {
                "cooperative": cooperative.name if cooperative else "",
                "region": cooperative.region if cooperative else "",
                "products": sorted({names.get(i.product_id, "") for i in shipment.items}),
                "status": shipment.status,
                "packed_at": shipment.packed_at,
                "shipped_at": shipment.shipped_at,
            }
        )
    return result


# --- helpers ---------------------------------------------------------------------------------


def _lock_shipment(user: User, shipment_id: int) -> Shipment:
    """Check the user may see the shipment, then lock its order for the change; the lock's
    read refreshes the order's shipments, this one included."""
    shipment = get_shipment(user, shipment_id)
    order = lock_order(shipment.order_id)
    return next(s for s in order.shipments if s.id == shipment_id)


def _require(shipment: Shipment, allowed: tuple[str, ...], action: str) -> None:
    """The compare of compare-and-set, on the shipment and its order locked and refreshed by
    `lock_order`: nothing moves while the order is being refunded."""
    order = shipment.order
    if order.refund_status == RefundStatus.PENDING:
        raise InvalidTransition(N_("A refund of this order is under way; it cannot ship now."))
    if shipment.status not in allowed or order.status != OrderStatus.PAID:
        raise InvalidTransition(
            f"Shipment of order {order.number} is {shipment.status}; it cannot {action}.",
        )


def _check_tracking(carrier: str, tracking_number: str) -> None:
    fields = {}
    if not (carrier or "").strip():
        fields["carrier"] = [N_("Missing data for required field.")]
    if not (tracking_number or "").strip():
        fields["tracking_number"] = [N_("Missing data for required field.")]
    if fields:
        raise Invalid(fields=fields)


def _apply_ship(
    shipment: Shipment, carrier: str, tracking_number: str, actor_id: int, now: datetime
) -> bool:
    """Ship one shipment in the caller's transaction; True when its order became shipped."""
    _require(shipment, OPEN, "be shipped")
    shipment.status = ShipmentStatus.SHIPPED
    shipment.carrier = carrier.strip()
    shipment.tracking_number = tracking_number.strip()
    shipment.packed_at = shipment.packed_at or now
    shipment.shipped_at = now
    order = shipment.order
    data = {**_ids(shipment), "carrier": shipment.carrier, "tracking": shipment.tracking_number}
    record(order, "shipment_shipped", actor_id=actor_id, at=now, data=data)
    if all(s.status == ShipmentStatus.SHIPPED for s in order.shipments):
        order.status = OrderStatus.SHIPPED
        order.shipped_at = now
        record(order, "shipped", actor_id=actor_id, at=now)
        return True
    return False


def _csv_shipment(
    row: csvio.ShipRow, order: Order | None, scope: int, errors: dict[int, list[str]]
) -> Shipment | None:
    """The shipment a file row ships, or None with the reason added to `errors`."""
    if not row.order_number:
        return None  # reported by the reader
    shipment = (
        next((s for s in order.shipments if s.cooperative_id == scope), None) if order else None
    )
    if order is None:
        errors.setdefault(row.line, []).append(f"No order numbered {row.order_number}.")
    elif shipment is None:
        errors.setdefault(row.line, []).append(
            f"Order {row.order_number} has nothing from this cooperative."
        )
    elif order.refund_status == RefundStatus.PENDING:
        errors.setdefault(row.line, []).append(
            f"Order {row.order_number} is being refunded; it cannot ship now."
        )
    elif shipment.status not in OPEN or order.status != OrderStatus.PAID:
        errors.setdefault(row.line, []).append(
            f"Order {row.order_number} is {shipment.status}; only pending or packed ship."
        )
    else:
        return shipment
    return None


def _deliver(order: Order, now: datetime, *, actor_id: int | None, kind: str) -> list[Shipment]:
    order.status = OrderStatus.DELIVERED
    order.delivered_at = now
    delivered = [s for s in order.shipments if s.status == ShipmentStatus.SHIPPED]
    for shipment in delivered:
        shipment.status = ShipmentStatus.DELIVERED
        shipment.delivered_at = now
    record(order, kind, actor_id=actor_id, at=now)
    return delivered


def _ids(shipment: Shipment) -> dict:
    return {"shipment_id": shipment.id, "cooperative_id": shipment.cooperative_id}


def _announce(shipments: list[Shipment], orders: list[Order]) -> None:
    """After the commit: tell the dashboards and whoever follows the orders."""
    app = current_app._get_current_object()
    for shipment in shipments:
        signals.shipment_changed.send(
            app, shipment_id=shipment.id, cooperative_id=shipment.cooperative_id
        )
    for order in orders:
        signals.order_changed.send(app, order_id=order.id, status=order.status)
