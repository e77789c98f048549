"""A small sales world whose report figures are worked out by hand in the tests.

All times are UTC; the report zone is Asia/Shanghai (UTC+8), so 15:59:59Z is 23:59:59 local on
the 10th and 16:00:00Z is midnight starting the 11th.

| order | how | buyer | lines (cooperative) | paid (UTC) | local day |
| O1 | live S1 (host1), pin1 | b1 | 2 x P1 @ 8000 live price (A) = 16000 | 11-10 15:59:59 | 11-10 |
| O2 | cart | b2 | 1 x P1 @ 8800 (A) + 3 x P2 @ 1500 (B) = 13300 | 11-10 16:00:00 | 11-11 |
| O3 | live S1, pin2 | b2 | 1 x P2 @ 1200 live price (B) = 1200 | 11-11 02:00 | 11-11 |
|    | refunded 1200 on 11-12 03:00Z (local 11-12) | | | | |
| O4 | live S2 (host2) | b3 | 1 x P1 @ 8800 (A) | 11-11 04:00 | 11-11 |
| O5 | live S1 | b3 | 5 x P1, never paid: expired | - | - |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

ADDRESS = {"name": "张三", "phone": "13800000000", "region": "新疆 尉犁县", "detail": "1 号"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class World:
    admin: object
    host1: object
    host2: object
    coop_a: object
    coop_b: object
    buyer: object
    coop_a_id: int
    coop_b_id: int
    p1: int
    p2: int
    s1: int
    s2: int
    pin1: int
    pin2: int
    orders: dict


def refund(order_id: int, *, when: datetime) -> None:
    """Set a full refund at a pinned time (the refund service takes no clock, so set it here)."""
    from orders.models import Order
    from shop.extensions import db

    order = db.session.get(Order, order_id)
    order.status = "refunded"
    order.refunded_amount = order.total
    order.refunded_at = when
    order.refund_id = f"test-refund-{order_id}"
    db.session.commit()


def _session(host_id: int, title: str, **kw) -> int:
    from live.models import LiveSession
    from shop.extensions import db

    session = LiveSession(host_id=host_id, title=title, status="ended", **kw)
    db.session.add(session)
    db.session.commit()
    return session.id


def _pin(session_id: int, product_id: int, created: datetime) -> int:
    from live.models import Pin
    from shop.extensions import db

    pin = Pin(session_id=session_id, product_id=product_id, created_at=created)
    db.session.add(pin)
    db.session.commit()
    return pin.id


def build(app, factory) -> World:
    """Create the world above through the order service (place_order + mark_paid, pinned clock)."""
    from orders.services import Line, expire_due, mark_paid, place_order
    from shop.extensions import db
    from shop.models import User

    app.config["TIMEZONE"] = "Asia/Shanghai"
    coop_a_id = factory.cooperative("尉犁羊肉合作社")
    coop_b_id = factory.cooperative("=Veg Co-op")  # a formula-looking name, for the CSV
    admin = factory.user("admin")
    host1, host2 = factory.user("host"), factory.user("host")
    coop_a = factory.user("coop", cooperative_id=coop_a_id)
    coop_b = factory.user("coop", cooperative_id=coop_b_id)
    b1, b2, b3 = factory.user("buyer"), factory.user("buyer"), factory.user("buyer")
    p1 = factory.product(
        coop_a_id, name="罗布羊肉", variants=[{"name": "2 kg", "price": 8800, "stock": 100}]
    )
    p2 = factory.product(
        coop_b_id, name="Carrots", variants=[{"name": "1 kg", "price": 1500, "stock": 100}]
    )
    v1, v2 = p1["variant_ids"][0], p2["variant_ids"][0]

    with app.app_context():
        s1 = _session(host1.id, "羊肉专场 Mutton night", started_at=at("2026-11-10T15:30:00"))
        s2 = _session(host2.id, "Second stream")
        pin1 = _pin(s1, p1["id"], at("2026-11-10T15:40:00"))
        pin2 = _pin(s1, p2["id"], at("2026-11-11T01:50:00"))
        users = {u.id: db.session.get(User, u.id) for u in (b1, b2, b3)}

        def order(buyer, lines, paid: str | None, placed: str | None = None, **kw) -> int:
            placed_at = at(placed) if placed else at(paid) - timedelta(minutes=1)
            made = place_order(users[buyer.id], lines, ADDRESS, clock=lambda: placed_at, **kw)
            if paid:
                mark_paid(made.id, provider="demo", reference=None, clock=lambda: at(paid))
            return made.id

        orders = {
            "O1": order(
                b1, [Line(v1, 2, 8000)], "2026-11-10T15:59:59", live_session_id=s1, pin_id=pin1
            ),
            "O2": order(b2, [Line(v1, 1), Line(v2, 3)], "2026-11-10T16:00:00"),
            "O3": order(
                b2, [Line(v2, 1, 1200)], "2026-11-11T02:00:00", live_session_id=s1, pin_id=pin2
            ),
            "O4": order(b3, [Line(v1, 1)], "2026-11-11T04:00:00", live_session_id=s2),
            "O5": order(b3, [Line(v1, 5)], None, placed="2026-11-11T05:00:00", live_session_id=s1),
        }
        refund(orders["O3"], when=at("2026-11-12T03:00:00"))
        assert expire_due(clock=lambda: at("2026-11-11T06:00:00")) == 1
        from orders.models import Order

        assert (
            db.session.scalar(select(Order.status).where(Order.id == orders["O5"])) == "cancelled"
        )
    return World(
        admin=admin,
        host1=host1,
        host2=host2,
        coop_a=coop_a,
        coop_b=coop_b,
        buyer=b1,
        coop_a_id=coop_a_id,
        coop_b_id=coop_b_id,
        p1=p1["id"],
        p2=p2["id"],
        s1=s1,
        s2=s2,
        pin1=pin1,
        pin2=pin2,
        orders=orders,
    )
