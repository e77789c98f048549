"""Accounts, cooperatives and the catalogue: the data every other package reads."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.database import UTCDateTime
from shop.extensions import db


def utcnow() -> datetime:
    """Timezone-aware now; a callable so defaults are evaluated per row, not at import."""
    return datetime.now(UTC)


class Role(StrEnum):
    BUYER = "buyer"
    HOST = "host"
    COOP = "coop"
    ADMIN = "admin"


class Cooperative(db.Model):
    """A farmers' cooperative: owns products and their stock, ships what was paid for."""

    __tablename__ = "cooperative"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    region: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    # No pin may sell this cooperative's products below this share of the regular price.
    live_price_floor_percent: Mapped[int] = mapped_column(default=50, server_default="50")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    products: Mapped[list[Product]] = relationship(back_populates="cooperative")


class User(UserMixin, db.Model):
    """Anyone who logs in. A `coop` user belongs to exactly one cooperative."""

    __tablename__ = "user"
    __table_args__ = (CheckConstraint("role IN ('buyer', 'host', 'coop', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16), default=Role.BUYER.value)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperative.id"), index=True)
    saved_address: Mapped[dict | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    # Part of every login cookie (see get_id); raising it by one ends every session the user
    # has (logout, password change, deactivation), including cookies copied before.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    cooperative: Mapped[Cooperative | None] = relationship()

    @property
    def is_active(self) -> bool:  # Flask-Login: deactivated users cannot log in
        return self.active

    def get_id(self) -> str:
        """Flask-Login's session (and remember-me) id: "<id>:<session_version>"."""
        return f"{self.id}:{self.session_version}"

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class Product(db.Model):
    """Something a cooperative sells, in one or more variants ("2 kg leg", "whole lamb")."""

    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperative.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    photo: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    cooperative: Mapped[Cooperative] = relationship(back_populates="products")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", order_by="Variant.id", cascade="all, delete-orphan"
    )

    @property
    def min_price(self) -> int | None:
        return min((v.price for v in self.variants), default=None)

    @property
    def total_stock(self) -> int:
        return sum(v.stock for v in self.variants)


class Variant(db.Model):
    """A sellable unit with its own price (integer minor units) and stock."""

    __tablename__ = "variant"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    price: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)
    low_stock_threshold: Mapped[int] = mapped_column(default=5, server_default="5")
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    product: Mapped[Product] = relationship(back_populates="variants")

    @property
    def low_stock(self) -> bool:
        return self.stock <= self.low_stock_threshold
