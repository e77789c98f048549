"""What one live session sold, for live's session report (which adds the viewers).

Same figures as the sales reports; the session's orders are found by
ix_order_live_session_paid_at. Minutes are UTC, as ISO 8601 strings.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, distinct, func, select

from orders.reports.services import (
    Scope,
    bucket_key,
    grouped_sales,
    item_table,
    line_total,
    order_table,
    shifted_bucket,
)
from shop.extensions import db
from shop.models import Product


def session_sales(session_id: int) -> dict:
    """Everything the one-session report takes from the orders: figures, minutes, products, pins."""
    scope = Scope(session_id=session_id)
    totals = grouped_sales(scope, group_by="session")["totals"]
    return {
        **totals,
        "per_minute": _per_minute(session_id),
        "top_products": _top_products(session_id),
        "per_pin": _per_pin(session_id),
    }


def _session_sales_select(session_id: int, *columns) -> Select:
    """Item lines of the session's paid orders (ix_order_live_session_paid_at finds them)."""
    base = item_table.join(order_table, order_table.c.id == item_table.c.order_id)
    return (
        select(*columns)
        .select_from(base)
        .where(order_table.c.live_session_id == session_id, order_table.c.paid_at.is_not(None))
    )


def _per_minute(session_id: int) -> list[dict]:
    minute = shifted_bucket(order_table.c.paid_at, timedelta(0), "minute").label("minute")
    stmt = _session_sales_select(
        session_id,
        minute,
        func.count(distinct(order_table.c.id)).label("orders"),
        func.sum(item_table.c.quantity).label("units"),
        func.sum(line_total()).label("gross"),
    ).group_by(minute)
    rows = db.session.execute(stmt)
    return [
        {
            "minute": bucket_key(r.minute),
            "orders": int(r.orders),
            "units": int(r.units),
            "gross": int(r.gross),
        }
        for r in rows
    ]


def _top_products(session_id: int, limit: int = 10) -> list[dict]:
    product = Product.__table__
    gross = func.sum(line_total()).label("gross")
    stmt = (
        _session_sales_select(
            session_id,
            item_table.c.product_id,
            product.c.name,
            func.sum(item_table.c.quantity).label("units"),
            gross,
        )
        .join(product, product.c.id == item_table.c.product_id)
        .group_by(item_table.c.product_id, product.c.name)
        .order_by(gross.desc(), item_table.c.product_id)
        .limit(limit)
    )
    return [
        {"product_id": r.product_id, "name": r.name, "units": int(r.units), "gross": int(r.gross)}
        for r in db.session.execute(stmt)
    ]


def _per_pin(session_id: int) -> dict[int | None, dict]:
    """Sales by the pin they were bought under (None: bought without a pin)."""
    stmt = _session_sales_select(
        session_id,
        order_table.c.pin_id,
        func.count(distinct(order_table.c.id)).label("orders"),
        func.sum(item_table.c.quantity).label("units"),
        func.sum(line_total()).label("gross"),
        func.count(distinct(order_table.c.buyer_id)).label("buyers"),
    ).group_by(order_table.c.pin_id)
    return {
        r.pin_id: {
            "orders": int(r.orders),
            "units": int(r.units),
            "gross": int(r.gross),
            "buyers": int(r.buyers),
        }
        for r in db.session.execute(stmt)
    }
