"""Races on PostgreSQL: crowds on little stock, cancel and expiry against payment, two expirers.

Each thread works in its own app context (its own session and connection), as request
threads do in the server.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from orders import services
from orders.errors import InvalidTransition, SoldOut
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import Line
from shop.extensions import db
from shop.models import User, Variant, utcnow
from tests.orders.conftest import ADDRESS

pytestmark = pytest.mark.only_db("postgresql")


def make_buyers(app, count: int) -> list[int]:
    """Many buyers quickly (no password hashing: they never log in)."""
    with app.app_context():
        users = [
            User(email=f"crowd{i}@example.com", password_hash="-", name=f"C{i}")
            for i in range(count)
        ]
        db.session.add_all(users)
        db.session.commit()
        return [u.id for u in users]


def in_threads(app, jobs: list, workers: int = 16) -> list:
    """Run each job(…) in its own thread and app context, all released together."""
    barrier = threading.Barrier(min(workers, len(jobs)))

    def run(job):
        with app.app_context():
            try:
                if len(jobs) <= workers:
                    barrier.wait(timeout=10)
                return job()
            except (SoldOut, InvalidTransition) as err:
                return err
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def counts(app, variant_id: int) -> tuple[int, int, int]:
    """(stock, held by unpaid orders, sold to paid orders) for one variant."""
    with app.app_context():
        stock = db.session.get(Variant, variant_id).stock
        held = sold = 0
        for order in db.session.scalars(db.select(Order)):
            units = sum(i.quantity for i in order.items if i.variant_id == variant_id)
            if order.status == OrderStatus.PENDING_PAYMENT and order.holds_stock:
                held += units
            elif order.status == OrderStatus.PAID:
                sold += units
        return stock, held, sold


def test_a_crowd_buys_exactly_the_stock(app, factory):
    # given 7 jars and 40 buyers tapping at once
    variant = factory.product(variants=[{"name": "jar", "price": 500, "stock": 7}])["variant_ids"][
        0
    ]
    buyers = make_buyers(app, 40)

    def buy(user_id: int):
        return lambda: (
            services.place_order(db.session.get(User, user_id), [Line(variant, 1)], ADDRESS).id
        )

    results = in_threads(app, [buy(uid) for uid in buyers], workers=20)
    # then exactly 7 orders hold the 7 jars, and 33 buyers were told "sold out"
    orders = [r for r in results if isinstance(r, int)]
    assert len(orders) == 7
    assert sum(isinstance(r, SoldOut) for r in results) == 33
    assert counts(app, variant) == (0, 7, 0)
    # and when they all pay at once, the 7 are sold, none twice
    in_threads(app, [lambda o=o: services.mark_paid(o, provider="demo") for o in orders])
    assert counts(app, variant) == (0, 0, 7)


def test_cancel_racing_payment_releases_each_hold_once(app, factory):
    app.config["MAX_UNPAID_ORDERS"] = 1000  # one buyer, many orders
    variant = factory.product(variants=[{"name": "jar", "price": 500, "stock": 30}])["variant_ids"][
        0
    ]
    buyer_id = make_buyers(app, 1)[0]
    with app.app_context():
        user = db.session.get(User, buyer_id)
        ids = [services.place_order(user, [Line(variant, 2)], ADDRESS).id for _ in range(10)]

    jobs = []
    for order_id in ids:
        jobs.append(
            lambda o=order_id: services.cancel_unpaid(
                o, actor_id=buyer_id, reason="cancelled_by_buyer"
            )
        )
        jobs.append(lambda o=order_id: services.mark_paid(o, provider="demo", reference=f"r{o}"))
    in_threads(app, jobs, workers=20)

    stock, held, sold = counts(app, variant)
    assert held == 0
    assert stock + sold == 30
    with app.app_context():
        for order in db.session.scalars(db.select(Order)):
            assert order.status in (OrderStatus.PAID, OrderStatus.CANCELLED)


def test_expiry_racing_payment_conserves_stock(app, factory):
    app.config["MAX_UNPAID_ORDERS"] = 1000  # one buyer, many orders
    variant = factory.product(variants=[{"name": "jar", "price": 500, "stock": 20}])["variant_ids"][
        0
    ]
    buyer_id = make_buyers(app, 1)[0]
    then = utcnow() - timedelta(hours=1)
    with app.app_context():
        user = db.session.get(User, buyer_id)
        ids = [
            services.place_order(user, [Line(variant, 1)], ADDRESS, clock=lambda: then).id
            for _ in range(12)
        ]

    jobs = [lambda o=o: services.mark_paid(o, provider="demo", reference=f"r{o}") for o in ids]
    jobs += [lambda: services.expire_due(limit=5) for _ in range(4)]
    in_threads(app, jobs, workers=16)

    stock, held, sold = counts(app, variant)
    assert held == 0 and stock + sold == 20
    with app.app_context():
        expired = db.session.scalar(db.select(db.func.count()).where(OrderEvent.kind == "expired"))
        assert expired <= 12


def test_two_expiry_runners_release_each_hold_once(app, factory):
    app.config["MAX_UNPAID_ORDERS"] = 1000  # one buyer, many orders
    variant = factory.product(variants=[{"name": "jar", "price": 500, "stock": 60}])["variant_ids"][
        0
    ]
    buyer_id = make_buyers(app, 1)[0]
    then = utcnow() - timedelta(hours=1)
    with app.app_context():
        user = db.session.get(User, buyer_id)
        for _ in range(30):
            services.place_order(user, [Line(variant, 2)], ADDRESS, clock=lambda: then)

    def drain() -> int:
        total = 0
        while (n := services.expire_due(limit=4)) > 0:
            total += n
        return total

    results = in_threads(app, [drain, drain], workers=2)
    assert sum(results) == 30
    assert counts(app, variant) == (60, 0, 0)
    with app.app_context():
        assert (
            db.session.scalar(db.select(db.func.count()).where(OrderEvent.kind == "expired")) == 30
        )
