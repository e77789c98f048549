"""Fulfilment fixtures: two cooperatives with members and products, paid orders on demand."""

from __future__ import annotations

from datetime import datetime

import pytest

from shop.extensions import db as _db

ADDRESS = {
    "name": "王芳",
    "phone": "13800138000",
    "region": "新疆 库尔勒市",
    "detail": "人民路 8 号",
}


class Scene:
    """Cooperatives A and B, a member of each, a buyer, a host and an admin."""

    def __init__(self, app, factory, login_as) -> None:
        self.app, self.factory, self.login_as = app, factory, login_as
        self.coop_a = factory.cooperative("尉犁羊肉合作社", region="新疆 尉犁县")
        self.coop_b = factory.cooperative("库尔勒香梨合作社", region="新疆 库尔勒市")
        self.mutton = factory.product(
            self.coop_a,
            name="羊肉",
            variants=[
                {"name": "2 kg leg", "price": 8800, "stock": 100},
                {"name": "whole lamb", "price": 168000, "stock": 100},
            ],
        )
        self.pears = factory.product(
            self.coop_b, name="香梨", variants=[{"name": "5 kg box", "price": 6900, "stock": 100}]
        )
        self.leg, self.lamb = self.mutton["variant_ids"]
        self.pear = self.pears["variant_ids"][0]
        self.member_a = factory.user("coop", cooperative_id=self.coop_a)
        self.member_b = factory.user("coop", cooperative_id=self.coop_b)
        self.buyer = factory.user("buyer", name="王芳")
        self.admin = factory.user("admin")
        self.host = factory.user("host")

    def paid_order(
        self,
        items: list[tuple[int, int]],
        *,
        buyer=None,
        live_session_id: int | None = None,
        paid_at: datetime | None = None,
    ) -> dict:
        """Place and pay an order through the order service; returns ids and shipments."""
        from orders.services import Line, mark_paid, place_order
        from shop.models import User

        with self.app.app_context():
            user = _db.session.get(User, (buyer or self.buyer).id)
            order = place_order(
                user, [Line(v, q) for v, q in items], ADDRESS, live_session_id=live_session_id
            )
            kwargs = {"clock": lambda: paid_at} if paid_at else {}
            order = mark_paid(order.id, provider="demo", **kwargs)
            return {
                "id": order.id,
                "number": order.number,
                "shipments": {s.cooperative_id: s.id for s in order.shipments},
            }

    def shipment(self, shipment_id: int) -> dict:
        from orders.models import Shipment

        with self.app.app_context():
            s = _db.session.get(Shipment, shipment_id)
            return {"status": s.status, "carrier": s.carrier, "tracking": s.tracking_number}

    def order_status(self, order_id: int) -> str:
        from orders.models import Order

        with self.app.app_context():
            return _db.session.get(Order, order_id).status

    def events(self, order_id: int) -> list[str]:
        from orders.models import OrderEvent

        with self.app.app_context():
            query = (
                _db.select(OrderEvent.kind)
                .where(OrderEvent.order_id == order_id)
                .order_by(OrderEvent.id)
            )
            return list(_db.session.scalars(query))


@pytest.fixture
def scene(app, factory, login_as) -> Scene:
    return Scene(app, factory, login_as)


def make_live_session(app, host_id: int, title: str = "尉犁羊肉专场") -> int:
    """A live session row, so orders can say which stream they were bought in."""
    from live.models import LiveSession

    with app.app_context():
        session = LiveSession(host_id=host_id, title=title)
        _db.session.add(session)
        _db.session.commit()
        return session.id
