"""Live sessions, pins with live prices, chat and the viewer counts reports read."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.database import UTCDateTime
from shop.extensions import db
from shop.models import Product, User, utcnow

TZ = UTCDateTime()


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class LiveSession(db.Model):
    """One stream by one host: scheduled, then live, then ended (with its replay)."""

    __tablename__ = "live_session"
    __table_args__ = (Index("ix_live_session_status_scheduled_at", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    cover: Mapped[str | None] = mapped_column(String(255))
    stream_url: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.SCHEDULED.value)
    scheduled_at: Mapped[datetime | None] = mapped_column(TZ)
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    ended_at: Mapped[datetime | None] = mapped_column(TZ)
    peak_viewers: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    host: Mapped[User] = relationship()
    pins: Mapped[list[Pin]] = relationship(back_populates="session", order_by="Pin.id")
    lineup: Mapped[list[LineupItem]] = relationship(
        back_populates="session", order_by="LineupItem.position", cascade="all, delete-orphan"
    )


class LineupItem(db.Model):
    """A product the host plans to feature in a session."""

    __tablename__ = "lineup_item"
    __table_args__ = (UniqueConstraint("session_id", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_session.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    position: Mapped[int] = mapped_column(default=0)

    session: Mapped[LiveSession] = relationship(back_populates="lineup")
    product: Mapped[Product] = relationship()


class Pin(db.Model):
    """A product featured in a session; current while `ended_at` is null (one at a time)."""

    __tablename__ = "pin"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_session.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    per_buyer_limit: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(TZ)

    session: Mapped[LiveSession] = relationship(back_populates="pins")
    product: Mapped[Product] = relationship()
    prices: Mapped[list[PinPrice]] = relationship(
        back_populates="pin", cascade="all, delete-orphan"
    )

    def live_price(self, variant_id: int) -> int | None:
        return next((p.live_price for p in self.prices if p.variant_id == variant_id), None)


class PinPrice(db.Model):
    """The live price of one variant while its pin is current."""

    __tablename__ = "pin_price"
    __table_args__ = (
        UniqueConstraint("pin_id", "variant_id"),
        CheckConstraint("live_price >= 0", name="live_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pin_id: Mapped[int] = mapped_column(ForeignKey("pin.id"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variant.id"))
    live_price: Mapped[int]

    pin: Mapped[Pin] = relationship(back_populates="prices")


class Message(db.Model):
    """A chat line or a question in a session; hidden ones vanish for everyone."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_session_id_id", "session_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_session.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(16), default="chat")
    body: Mapped[str] = mapped_column(String(500))
    hidden: Mapped[bool] = mapped_column(default=False)
    answered: Mapped[bool] = mapped_column(default=False)
    votes: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    user: Mapped[User] = relationship()


class ViewerVisit(db.Model):
    """One distinct viewer of a session (a user id or an anonymous browser key)."""

    __tablename__ = "viewer_visit"
    __table_args__ = (UniqueConstraint("session_id", "viewer_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_session.id"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    first_seen: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class ViewerSample(db.Model):
    """The viewer count in one minute of a session, for the per-minute curve."""

    __tablename__ = "viewer_sample"
    __table_args__ = (UniqueConstraint("session_id", "minute"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_session.id"))
    minute: Mapped[datetime] = mapped_column(TZ)
    viewers: Mapped[int] = mapped_column(default=0)


class QuestionVote(db.Model):
    """One viewer's "me too" on a question, so the host sees the most-asked first."""

    __tablename__ = "question_vote"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
