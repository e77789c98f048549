"""Order-service fixtures: the Stripe stand-in, Stripe-configured apps, a buyer with goods."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from shop.extensions import db as _db
from tests.conftest import make_app
from tests.orders.stripe_stub import StripeStub

ADDRESS = {
    "name": "王芳",
    "phone": "13800138000",
    "region": "新疆 库尔勒市",
    "detail": "人民路 8 号",
}
WEBHOOK_SECRET = "whsec_test_farmlive"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stripe: the app uses Stripe through the local stand-in")


@pytest.fixture
def stripe_stub() -> Iterator[StripeStub]:
    with StripeStub() as stub:
        yield stub


def stripe_settings(stub: StripeStub) -> dict:
    return {
        "PAYMENT_PROVIDER": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_farmlive",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_farmlive",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stub.url,
    }


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str, tmp_path):
    """The shared fresh app; tests marked `stripe` get it wired to the local Stripe stand-in."""
    overrides = {}
    if request.node.get_closest_marker("stripe"):
        overrides = stripe_settings(request.getfixturevalue("stripe_stub"))
    app = make_app(database_url, tmp_path, **overrides)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


class Shop:
    """A cooperative with products, a logged-in buyer, an admin: the usual order scene."""

    def __init__(self, app, factory, login_as) -> None:
        self.app, self.factory, self.login_as = app, factory, login_as
        self.product = factory.product(
            variants=[
                {"name": "2 kg leg", "price": 8800, "stock": 10},
                {"name": "whole lamb", "price": 168000, "stock": 2},
            ]
        )
        self.leg, self.lamb = self.product["variant_ids"]
        self.buyer = factory.user("buyer")
        self.api = login_as(self.buyer)

    def order(self, items: list[tuple[int, int]] | None = None, api=None) -> dict:
        """Check out through the API; returns the order JSON."""
        items = items or [(self.leg, 1)]
        body = {"items": [{"variant_id": v, "quantity": q} for v, q in items], "address": ADDRESS}
        response = (api or self.api).post("/orders", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def stock(self, variant_id: int) -> int:
        from shop.models import Variant

        with self.app.app_context():
            return _db.session.get(Variant, variant_id).stock

    def events(self, order_id: int) -> list[str]:
        from orders.models import OrderEvent

        with self.app.app_context():
            rows = _db.session.scalars(
                _db.select(OrderEvent.kind)
                .where(OrderEvent.order_id == order_id)
                .order_by(OrderEvent.id)
            )
            return list(rows)

    def status(self, order_id: int) -> str:
        from orders.models import Order

        with self.app.app_context():
            return _db.session.get(Order, order_id).status

    def expire(self, order_id: int) -> int:
        """Let the order's hold run out and run one expiry pass."""
        from orders.models import Order
        from orders.services import expire_due

        with self.app.app_context():
            expires_at = _db.session.get(Order, order_id).expires_at
            _db.session.commit()
            return expire_due(clock=lambda: expires_at + timedelta(seconds=1))


@pytest.fixture
def shop(app, factory, login_as) -> Shop:
    return Shop(app, factory, login_as)
