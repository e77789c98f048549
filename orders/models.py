"""Orders, their items, events, shipments and the webhook ledger.

Only `orders.services` changes these rows (and stock); fulfilment and reports read them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.database import UTCDateTime
from shop.extensions import db
from shop.models import utcnow

TZ = UTCDateTime()


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class RefundStatus(StrEnum):
    """A refund's own state, as the provider reports it (an order is `refunded` once succeeded)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class ShipmentStatus(StrEnum):
    PENDING = "pending"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Order(db.Model):
    """A buyer's order. Holds its stock while `pending_payment`, until `expires_at`."""

    __tablename__ = "order"
    __table_args__ = (
        UniqueConstraint("buyer_id", "idempotency_key"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        Index("ix_order_status_expires_at", "status", "expires_at"),
        Index("ix_order_paid_at", "paid_at"),
        Index("ix_order_live_session_paid_at", "live_session_id", "paid_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING_PAYMENT.value)
    total: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    address: Mapped[dict] = mapped_column(JSON)
    live_session_id: Mapped[int | None] = mapped_column(ForeignKey("live_session.id"))
    pin_id: Mapped[int | None] = mapped_column(ForeignKey("pin.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    payment_provider: Mapped[str | None] = mapped_column(String(16))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_client_secret: Mapped[str | None] = mapped_column(String(255))
    refunded_amount: Mapped[int] = mapped_column(default=0)
    refund_id: Mapped[str | None] = mapped_column(String(255))
    # The latest refund's state: set to `pending` (under the order's lock) before the provider
    # is called, so one request refunds and shipping waits; the provider's answer settles it.
    refund_status: Mapped[str | None] = mapped_column(String(16))
    # Why an admin must look at this order (a dispute, a payment that did not match, a refund
    # that failed); None when nothing is wrong.
    attention: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    paid_at: Mapped[datetime | None] = mapped_column(TZ)
    cancelled_at: Mapped[datetime | None] = mapped_column(TZ)
    refunded_at: Mapped[datetime | None] = mapped_column(TZ, index=True)
    shipped_at: Mapped[datetime | None] = mapped_column(TZ)
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)
    # True while the order holds stock; flipped exactly once when the hold is released.
    holds_stock: Mapped[bool] = mapped_column(default=True)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )
    shipments: Mapped[list[Shipment]] = relationship(
        back_populates="order", order_by="Shipment.id", cascade="all, delete-orphan"
    )

    @property
    def units(self) -> int:
        return sum(item.quantity for item in self.items)


class OrderItem(db.Model):
    """One line of an order, with the name and price fixed at the moment of ordering."""

    __tablename__ = "order_item"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        Index("ix_order_item_cooperative_id_order_id", "cooperative_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variant.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperative.id"))
    name: Mapped[str] = mapped_column(String(255))
    unit_price: Mapped[int]
    quantity: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="items")

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class OrderEvent(db.Model):
    """Who did what to an order, when: the order's history, written with every change."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    order: Mapped[Order] = relationship(back_populates="events")


class Shipment(db.Model):
    """The part of a paid order that one cooperative packs and ships."""

    __tablename__ = "shipment"
    __table_args__ = (
        UniqueConstraint("order_id", "cooperative_id"),
        Index("ix_shipment_cooperative_id_status", "cooperative_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperative.id"))
    status: Mapped[str] = mapped_column(String(16), default=ShipmentStatus.PENDING.value)
    carrier: Mapped[str | None] = mapped_column(String(80))
    tracking_number: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    packed_at: Mapped[datetime | None] = mapped_column(TZ)
    shipped_at: Mapped[datetime | None] = mapped_column(TZ)
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)

    order: Mapped[Order] = relationship(back_populates="shipments")

    @property
    def items(self) -> list[OrderItem]:
        return [item for item in self.order.items if item.cooperative_id == self.cooperative_id]


class WebhookEvent(db.Model):
    """A provider event, claimed by id (the primary key) and applied once.

    A delivery takes a short lease (`lease_until`) to apply it; `applied_at` is set only once
    applying succeeded. A claim whose lease ran out unapplied (the process died, the database
    went away) is applied again by the next delivery or by the background re-drive, from the
    stored `payload`: applying is idempotent by the order's own state.
    """

    __tablename__ = "webhook_event"
    __table_args__ = (
        Index("ix_webhook_event_applied_at_received_at", "applied_at", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), default="stripe")
    type: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict | None] = mapped_column(JSON)
    lease_until: Mapped[datetime | None] = mapped_column(TZ)
    applied_at: Mapped[datetime | None] = mapped_column(TZ)
