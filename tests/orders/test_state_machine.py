"""A Hypothesis stateful test of the order state machine: allowed transitions only, stock conserved.

Random sequences of checkout, payment (demo, through the same settle path as Stripe),
cancel/refund and expiry; after every step stock + held + sold equals what the farm started with,
and the buyer never holds more than MAX_UNPAID_ORDERS unpaid orders.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from orders import refunds, services
from orders.errors import InvalidTransition, SoldOut, TooManyUnpaid
from orders.models import Order, OrderStatus
from orders.services import Line
from shop.extensions import db
from shop.models import Cooperative, Product, User, Variant, utcnow
from tests.orders.conftest import ADDRESS

P, PAID, C, R = "pending_payment", "paid", "cancelled", "refunded"
ALLOWED = {(P, P), (P, PAID), (P, C), (PAID, PAID), (PAID, R), (C, C), (C, PAID), (R, R)}
INITIAL = 6


class OrderMachine(RuleBasedStateMachine):
    app = None  # set by the test
    run = 0

    def __init__(self) -> None:
        super().__init__()
        OrderMachine.run += 1
        with self.app.app_context():
            coop = Cooperative(name=f"SM coop {self.run}", region="r")
            product = Product(cooperative=coop, name="honey")
            variant = Variant(product=product, name="jar", price=1200, stock=INITIAL)
            buyer = User(email=f"machine{self.run}@example.com", password_hash="-", name="M")
            db.session.add_all([coop, product, variant, buyer])
            db.session.commit()
            self.variant_id, self.buyer_id = variant.id, buyer.id
        self.orders: dict[int, str] = {}

    def _status(self, order_id: int) -> str:
        return db.session.get(Order, order_id).status

    @rule(quantity=st.integers(1, 3))
    def place(self, quantity: int) -> None:
        with self.app.app_context():
            try:
                order = services.place_order(
                    db.session.get(User, self.buyer_id), [Line(self.variant_id, quantity)], ADDRESS
                )
            except (SoldOut, TooManyUnpaid):
                return
            self.orders[order.id] = P

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 100))
    def pay(self, pick: int) -> None:
        order_id = sorted(self.orders)[pick % len(self.orders)]
        with self.app.app_context():
            if self._status(order_id) in (P, C):
                refunds.settle_payment(order_id, provider="demo", reference=f"demo_{order_id}")

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 100))
    def cancel(self, pick: int) -> None:
        order_id = sorted(self.orders)[pick % len(self.orders)]
        with self.app.app_context():
            order = db.session.get(Order, order_id)
            try:
                refunds.cancel_order(order, actor=db.session.get(User, self.buyer_id))
            except InvalidTransition:
                pass

    @rule()
    def expire(self) -> None:
        later = utcnow() + timedelta(hours=1)
        with self.app.app_context():
            services.expire_due(clock=lambda: later)

    @invariant()
    def only_allowed_transitions(self) -> None:
        with self.app.app_context():
            for order_id, before in self.orders.items():
                now = self._status(order_id)
                assert (before, now) in ALLOWED, (order_id, before, now)
                self.orders[order_id] = now

    @invariant()
    def stock_is_conserved(self) -> None:
        with self.app.app_context():
            stock = db.session.get(Variant, self.variant_id).stock
            held = sold = 0
            for order_id in self.orders:
                order = db.session.get(Order, order_id)
                units = order.units
                if order.status == OrderStatus.PENDING_PAYMENT:
                    assert order.holds_stock
                    held += units
                elif order.status == OrderStatus.PAID:
                    sold += units
            assert stock >= 0
            assert stock + held + sold == INITIAL

    @invariant()
    def a_buyer_holds_at_most_max_unpaid_orders(self) -> None:
        unpaid = sum(1 for status in self.orders.values() if status == P)
        assert unpaid <= self.app.config["MAX_UNPAID_ORDERS"]


def test_order_state_machine(app):
    OrderMachine.app = app
    run_state_machine_as_test(
        OrderMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
