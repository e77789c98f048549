"""One session's report: its sales (from the order service's figures) and its viewers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from live.errors import NotHost, SessionNotFound
from live.models import LiveSession, Pin, ViewerSample, ViewerVisit
from orders.reports.sessions import session_sales
from shop.extensions import db
from shop.models import Product, User


def minute_key(value: datetime) -> str:
    """The same minute string the sales side uses: UTC, ISO 8601, seconds zeroed."""
    return value.strftime("%Y-%m-%dT%H:%M:00Z")


def visible_session(user: User, session_id: int) -> LiveSession:
    """The session if `user` hosts it or is an admin; 404 when missing, 403 for anyone else."""
    session = db.session.get(LiveSession, session_id)
    if session is None:
        raise SessionNotFound()
    if not (user.is_admin or session.host_id == user.id):
        raise NotHost("Only this session's host or an admin can read its report.")
    return session


def session_report(user: User, session_id: int) -> dict:
    """API.md's session report plus the session itself and sales per pin; live or ended."""
    session = visible_session(user, session_id)
    sales = session_sales(session_id)
    per_pin = sales.pop("per_pin")
    unique = db.session.scalar(
        select(func.count()).select_from(ViewerVisit).where(ViewerVisit.session_id == session_id)
    )
    samples = db.session.execute(
        select(ViewerSample.minute, ViewerSample.viewers).where(
            ViewerSample.session_id == session_id
        )
    ).all()
    peak = max([session.peak_viewers or 0, *(viewers for _, viewers in samples)])
    return {
        "session": session,
        **sales,
        "peak_viewers": peak,
        "unique_viewers": int(unique or 0),
        "conversion": round(sales["buyers"] / unique, 4) if unique else 0,
        "per_minute": _merge_minutes(sales["per_minute"], samples),
        "pins": _pins(session_id, per_pin),
    }


def _merge_minutes(sales: list[dict], samples: list) -> list[dict]:
    """Minutes with a sale or a viewer sample, in order; a minute without a sample shows 0."""
    rows = {r["minute"]: {**r, "viewers": 0} for r in sales}
    for minute, viewers in samples:
        key = minute_key(minute)
        rows.setdefault(key, {"minute": key, "orders": 0, "units": 0, "gross": 0})
        rows[key]["viewers"] = viewers
    return [rows[key] for key in sorted(rows)]


def _pins(session_id: int, per_pin: dict) -> list[dict]:
    """Every pin of the session in order, with what sold under it (zeros when nothing did)."""
    empty = {"orders": 0, "units": 0, "gross": 0, "buyers": 0}
    pins = db.session.execute(
        select(Pin.id, Pin.product_id, Product.name, Pin.created_at, Pin.ended_at)
        .join(Product, Product.id == Pin.product_id)
        .where(Pin.session_id == session_id)
        .order_by(Pin.created_at, Pin.id)
    ).all()
    rows = [
        {
            "pin_id": pin.id,
            "product_id": pin.product_id,
            "name": pin.name,
            "pinned_at": pin.created_at,
            "unpinned_at": pin.ended_at,
            **per_pin.get(pin.id, empty),
        }
        for pin in pins
    ]
    if None in per_pin:
        rows.append(
            {
                "pin_id": None,
                "product_id": None,
                "name": None,
                "pinned_at": None,
                "unpinned_at": None,
                **per_pin[None],
            }
        )
    return rows
