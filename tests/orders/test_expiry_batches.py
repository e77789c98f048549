"""Expiry under load: due holds are claimed and cancelled batch by batch, each batch in the
transaction that holds its claim, so runners split the work instead of queuing on each other's
rows; Stripe is asked to cancel intents only once the holds are released, and one hanging
cancel delays no other hold (nor, in the server's loop, the next pass).

Nothing here measures speed: each test checks who finished while whom was still waiting.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from orders import payments, tasks
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import Line, expire_due, place_order
from shop.extensions import db
from shop.models import User, Variant, utcnow
from tests.orders.conftest import ADDRESS
from tests.orders.test_stripe import intent_of, start

HANG_DETECTOR = 20.0  # seconds: only a runner that waits for someone else's locks gets near it
STOCK = 1000


def due_holds(app, factory, count: int) -> tuple[list[int], list[int]]:
    """`count` unpaid orders whose holds ran out an hour ago, oldest first, over three variants.

    Every order takes the first variant, and most take another in either line order, so
    batches overlap on variant rows in every way two runners could lock them.
    """
    app.config["MAX_UNPAID_ORDERS"] = count
    variants = factory.product(
        variants=[{"name": f"jar {n}", "price": 500, "stock": STOCK} for n in range(3)]
    )["variant_ids"]
    first, second, third = variants
    shapes = [[Line(first, 1)], [Line(third, 1), Line(first, 2)], [Line(first, 1), Line(second, 3)]]
    then = utcnow() - timedelta(hours=1)
    with app.app_context():
        buyer = User(email="crowd@example.com", password_hash="-", name="Crowd")
        db.session.add(buyer)
        db.session.commit()
        ids = [
            place_order(
                buyer, shapes[n % 3], ADDRESS, clock=lambda n=n: then + timedelta(milliseconds=n)
            ).id
            for n in range(count)
        ]
        db.session.remove()
    return ids, variants


def outcome(app, order_ids: list[int], variants: list[int]) -> tuple[Counter, Counter, list[int]]:
    """(statuses, `expired` events per order, stock per variant), read fresh."""
    with app.app_context():
        statuses = Counter(
            db.session.scalars(select(Order.status).where(Order.id.in_(order_ids))).all()
        )
        expired = Counter(
            db.session.scalars(
                select(OrderEvent.order_id).where(
                    OrderEvent.order_id.in_(order_ids), OrderEvent.kind == "expired"
                )
            ).all()
        )
        stock = [db.session.get(Variant, vid).stock for vid in variants]
        db.session.remove()
    return statuses, expired, stock


def in_thread(app, work: Callable[[], object], results: dict, name: str) -> threading.Thread:
    """Run `work` in its own thread, app context and session; its answer lands in results."""

    def run() -> None:
        with app.app_context():
            try:
                results[name] = work()
            except Exception as err:  # the assertions report it
                results[name] = err
            finally:
                db.session.remove()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


# --- runners split the work -------------------------------------------------------------------


def test_two_runners_at_once_release_every_hold_exactly_once(app, factory):
    # given 300 holds that ran out
    order_ids, variants = due_holds(app, factory, 300)
    # when two runners make one pass each, at the same moment
    barrier, results = threading.Barrier(2), {}

    def runner() -> int:
        barrier.wait(timeout=10)
        return expire_due()

    threads = [in_thread(app, runner, results, name) for name in ("first", "second")]
    for thread in threads:
        thread.join(HANG_DETECTOR * 3)
    assert not any(thread.is_alive() for thread in threads), "a runner never finished"
    # then together they expired every hold, each exactly once, and every unit is back
    assert all(isinstance(n, int) for n in results.values()), results
    assert results["first"] + results["second"] == 300
    statuses, expired, stock = outcome(app, order_ids, variants)
    assert statuses == Counter({OrderStatus.CANCELLED.value: 300})
    assert set(expired) == set(order_ids) and set(expired.values()) == {1}
    assert stock == [STOCK, STOCK, STOCK]


def test_a_pass_stops_at_its_limit_and_the_next_one_goes_on(app, factory):
    order_ids, variants = due_holds(app, factory, 30)
    with app.app_context():
        assert expire_due(limit=20, batch_size=8) == 20
        assert expire_due(limit=20, batch_size=8) == 10
        assert expire_due(limit=20, batch_size=8) == 0
    statuses, expired, stock = outcome(app, order_ids, variants)
    assert statuses == Counter({OrderStatus.CANCELLED.value: 30})
    assert set(expired.values()) == {1} and stock == [STOCK, STOCK, STOCK]


@pytest.mark.only_db("postgresql")
def test_a_runner_does_not_wait_for_the_holds_another_runner_is_releasing(app, factory):
    # given 120 holds that ran out, and a first runner that stalls in the middle of its work,
    # after it has changed its first expired order and before that change is committed
    order_ids, variants = due_holds(app, factory, 120)
    holding, release, results = threading.Event(), threading.Event(), {}

    def stalling_runner() -> int:
        def stall(session, _context) -> None:
            if not holding.is_set() and any(
                isinstance(obj, OrderEvent) and obj.kind == "expired" for obj in session.new
            ):
                holding.set()
                release.wait(HANG_DETECTOR * 2)

        event.listen(db.session(), "after_flush", stall)
        return expire_due()

    first = in_thread(app, stalling_runner, results, "first")
    try:
        assert holding.wait(HANG_DETECTOR), "the first runner never started expiring"
        # when a second runner makes a pass meanwhile
        second = in_thread(app, expire_due, results, "second")
        second.join(HANG_DETECTOR)
        # then it finished while the first one still held what it had claimed
        assert not second.is_alive(), "the second runner waited for the first one's rows"
        assert first.is_alive() and not release.is_set()
        statuses, expired, _stock = outcome(app, order_ids, variants)
        left = statuses[OrderStatus.PENDING_PAYMENT.value]
        assert results["second"] == 120 - left and 0 < left < 120
        assert set(expired.values()) == {1}
        with app.app_context():  # every hold it left is one the first runner holds locked
            free = db.session.scalars(
                select(Order.id)
                .where(Order.id.in_(order_ids), Order.status == OrderStatus.PENDING_PAYMENT)
                .with_for_update(skip_locked=True)
            ).all()
            db.session.remove()
        assert free == []
    finally:
        release.set()
        first.join(HANG_DETECTOR)
    # and once the first runner goes on, every hold was released exactly once
    assert not first.is_alive()
    assert results["first"] + results["second"] == 120, results
    statuses, expired, stock = outcome(app, order_ids, variants)
    assert statuses == Counter({OrderStatus.CANCELLED.value: 120})
    assert set(expired) == set(order_ids) and set(expired.values()) == {1}
    assert stock == [STOCK, STOCK, STOCK]


# --- Stripe is asked after the holds are released ---------------------------------------------


def until(check: Callable[[], bool], timeout: float = HANG_DETECTOR) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.stripe
@pytest.mark.parametrize("runner", ["server loop", "expire_due"])
def test_a_hanging_stripe_cancel_delays_no_other_hold(app, shop, stripe_stub, runner):
    # given four unpaid orders that ran out, the oldest first: two paid through Stripe (their
    # intents open), one through the demo provider, one never started
    app.config.update(MAX_UNPAID_ORDERS=10, STRIPE_READ_TIMEOUT_SECONDS=HANG_DETECTOR * 2)
    hanging, other, demo, plain = (shop.order() for _ in range(4))
    hanging_intent = intent_of(stripe_stub, start(shop, hanging))
    other_intent = intent_of(stripe_stub, start(shop, other))
    orders = [hanging["id"], other["id"], demo["id"], plain["id"]]
    with app.app_context():
        payments.start_payment(demo["id"], gateway=payments.gateway("demo"))
        for age, order_id in enumerate(orders):
            db.session.get(Order, order_id).expires_at = utcnow() - timedelta(minutes=10 - age)
        db.session.commit()
    assert shop.stock(shop.leg) == 6
    # and Stripe hangs on cancelling the oldest order's intent until the end of the test
    arrived, release = threading.Event(), threading.Event()

    def hang(method: str, path: str) -> None:
        if path == f"/v1/payment_intents/{hanging_intent}/cancel":
            arrived.set()
            release.wait(HANG_DETECTOR * 2)

    stripe_stub.on_request = hang
    # when an expiry pass runs
    results: dict = {}
    if runner == "server loop":
        expiry = threading.Thread(
            target=lambda: results.update(expired=tasks.expire_once(app)), daemon=True
        )
        expiry.start()
    else:
        expiry = in_thread(app, expire_due, results, "expired")
    try:
        assert arrived.wait(HANG_DETECTOR), "the intent cancel never reached Stripe"
        # then while that cancel hangs, every hold is released already
        assert until(lambda: shop.stock(shop.leg) == 10)
        assert all(shop.status(order_id) == "cancelled" for order_id in orders)
        assert all("expired" in shop.events(order_id) for order_id in orders)
        if runner == "server loop":
            # and the pass is over, and the other intent's cancel went ahead on its own
            expiry.join(HANG_DETECTOR)
            assert not expiry.is_alive(), "the expiry pass waited for Stripe"
            assert results["expired"] == 4
            assert until(lambda: (other_intent, "canceled") in stripe_stub.cancels)
        assert "stripe_payment_cancelled" not in shop.events(hanging["id"])
    finally:
        release.set()
    # and once Stripe answers, the hanging intent is cancelled and said so in its history
    assert until(lambda: "stripe_payment_cancelled" in shop.events(hanging["id"]))
    expiry.join(HANG_DETECTOR)
    assert not expiry.is_alive() and results["expired"] == 4
    assert until(lambda: "stripe_payment_cancelled" in shop.events(other["id"]))
    assert stripe_stub.intents[hanging_intent]["status"] == "canceled"
    assert sorted(stripe_stub.cancels) == sorted(
        [(hanging_intent, "canceled"), (other_intent, "canceled")]
    )
    assert shop.events(hanging["id"])[-2:] == ["expired", "stripe_payment_cancelled"]
    assert shop.events(demo["id"])[-1] == "expired"
    assert shop.events(plain["id"]) == ["placed", "expired"]
    with app.app_context():
        count = select(func.count()).where(OrderEvent.kind == "expired")
        assert db.session.scalar(count) == 4
