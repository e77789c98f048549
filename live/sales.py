"""What the room and the host console learn about sales: masked buyers, per-product totals."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from orders.models import Order, OrderItem, OrderStatus
from shop.extensions import db

_SUFFIXES = (
    "自治县",
    "自治州",
    "地区",
    "新区",
    "县",
    "市",
    "区",
    "旗",
    "州",
    "省",
    "镇",
    "乡",
    "村",
)


def short_region(region: str) -> str:
    """'新疆 尉犁县' → '尉犁': the most local part of an address region, without its suffix."""
    parts = [p for p in re.split(r"[\s,，/]+", region or "") if p]
    if not parts:
        return ""
    place = parts[-1]
    for suffix in _SUFFIXES:
        if place.endswith(suffix) and len(place) > len(suffix) + 1:
            return place[: -len(suffix)]
    return place


def mask_name(name: str) -> str:
    """'张伟' → '张**': the first character only, so a buyer is never identifiable."""
    name = (name or "").strip()
    return f"{name[0]}**" if name else "**"


def mask_buyer(address: dict | None) -> str:
    address = address or {}
    region = short_region(str(address.get("region") or ""))
    masked = mask_name(str(address.get("name") or ""))
    return f"{region}的{masked}" if region else masked


def sale_news(order_id: int) -> dict | None:
    """The `sale` event for a paid order of a live session, or None for other orders."""
    order = db.session.get(Order, order_id)
    if order is None or order.live_session_id is None or not order.items:
        return None
    first = order.items[0]
    product_name = first.name.split(" · ")[0]
    return {
        "session_id": order.live_session_id,
        "buyer": mask_buyer(order.address),
        "product_name": product_name,
        "quantity": order.units,
    }


def session_sales(session_id: int) -> dict:
    """Paid orders, units and gross of a session, per product, for the host console."""
    paid = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)
    rows = db.session.execute(
        select(
            OrderItem.product_id,
            func.min(OrderItem.name),
            func.count(func.distinct(OrderItem.order_id)),
            func.sum(OrderItem.quantity),
            func.sum(OrderItem.quantity * OrderItem.unit_price),
        )
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.live_session_id == session_id, Order.status.in_(paid))
        .group_by(OrderItem.product_id)
        .order_by(func.sum(OrderItem.quantity * OrderItem.unit_price).desc())
    ).all()
    totals = db.session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.total), 0)).where(
            Order.live_session_id == session_id, Order.status.in_(paid)
        )
    ).one()
    products = [
        {
            "product_id": pid,
            "name": str(name).split(" · ")[0],
            "orders": int(orders),
            "units": int(units or 0),
            "gross": int(gross or 0),
        }
        for pid, name, orders, units, gross in rows
    ]
    return {
        "orders": int(totals[0]),
        "units": sum(p["units"] for p in products),
        "gross": int(totals[1]),
        "products": products,
    }
