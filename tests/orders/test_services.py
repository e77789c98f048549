"""The order service called directly: given / when / then, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from orders import services
from orders.errors import InvalidTransition, SoldOut, TooManyUnpaid
from orders.models import Order, OrderEvent
from orders.services import Line
from shop import signals
from shop.errors import Invalid
from shop.extensions import db
from shop.models import User, Variant, utcnow
from tests.orders.conftest import ADDRESS


def test_the_same_idempotency_key_returns_the_same_order(shop, db):
    user = db.session.get(User, shop.buyer.id)
    first = services.place_order(user, [Line(shop.leg, 2)], ADDRESS, idempotency_key="tap-1")
    again = services.place_order(user, [Line(shop.leg, 2)], ADDRESS, idempotency_key="tap-1")
    assert again.id == first.id
    assert db.session.get(Variant, shop.leg).stock == 8


def test_an_order_over_the_unpaid_limit_is_refused_and_writes_nothing(shop, db):
    # given a buyer who already holds MAX_UNPAID_ORDERS (3) unpaid orders
    user = db.session.get(User, shop.buyer.id)
    for _ in range(3):
        services.place_order(user, [Line(shop.leg, 1)], ADDRESS)
    # when they place a fourth
    with pytest.raises(TooManyUnpaid):
        services.place_order(db.session.get(User, shop.buyer.id), [Line(shop.leg, 2)], ADDRESS)
    # then nothing of it was written, and paying one makes room again
    assert db.session.get(Variant, shop.leg).stock == 7
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 3
    first = db.session.scalar(db.select(Order.id).order_by(Order.id).limit(1))
    services.mark_paid(first, provider="demo")
    services.place_order(db.session.get(User, shop.buyer.id), [Line(shop.leg, 2)], ADDRESS)
    assert db.session.get(Variant, shop.leg).stock == 5


def test_the_line_cap_holds_after_lines_for_one_variant_are_merged(shop, db):
    user = db.session.get(User, shop.buyer.id)
    with pytest.raises(Invalid) as err:
        services.place_order(user, [Line(shop.leg, 60), Line(shop.leg, 60)], ADDRESS)
    assert str(shop.leg) in err.value.fields["items"]
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 0


def test_lines_for_one_variant_are_merged_and_sold_out_is_named(shop, db):
    user = db.session.get(User, shop.buyer.id)
    order = services.place_order(user, [Line(shop.lamb, 1), Line(shop.lamb, 1)], ADDRESS)
    assert [(i.variant_id, i.quantity) for i in order.items] == [(shop.lamb, 2)]
    with pytest.raises(SoldOut) as err:
        services.place_order(user, [Line(shop.lamb, 1)], ADDRESS)
    assert err.value.variant_id == shop.lamb


def test_order_numbers_are_readable_and_unique(shop, db, app):
    app.config["MAX_UNPAID_ORDERS"] = 5
    user = db.session.get(User, shop.buyer.id)
    numbers = {services.place_order(user, [Line(shop.leg, 1)], ADDRESS).number for _ in range(5)}
    assert len(numbers) == 5
    assert all(n.startswith("FL") and len(n) == 14 and "O" not in n[8:] for n in numbers)


def test_expiry_releases_each_hold_exactly_once(shop, db):
    # given an order placed 20 minutes ago with a 15-minute hold
    user = db.session.get(User, shop.buyer.id)
    then = utcnow() - timedelta(minutes=20)
    order = services.place_order(user, [Line(shop.leg, 4)], ADDRESS, clock=lambda: then)
    fresh = services.place_order(user, [Line(shop.leg, 1)], ADDRESS)
    # when expiry runs twice
    assert services.expire_due() == 1
    assert services.expire_due() == 0
    # then the stale order is cancelled and its stock back, once; the fresh one still holds
    assert db.session.get(Order, order.id).status == "cancelled"
    assert db.session.get(Order, fresh.id).status == "pending_payment"
    assert db.session.get(Variant, shop.leg).stock == 9
    # and a cancel afterwards is refused without touching stock
    with pytest.raises(InvalidTransition):
        services.cancel_unpaid(order.id, actor_id=None, reason="cancelled_by_buyer")
    assert db.session.get(Variant, shop.leg).stock == 9


def test_every_change_writes_an_event_in_the_same_transaction(shop, db):
    user = db.session.get(User, shop.buyer.id)
    order = services.place_order(user, [Line(shop.leg, 1)], ADDRESS)
    services.mark_paid(order.id, provider="demo", reference="demo_x", actor_id=user.id)
    kinds = list(
        db.session.scalars(
            db.select(OrderEvent.kind)
            .where(OrderEvent.order_id == order.id)
            .order_by(OrderEvent.id)
        )
    )
    assert kinds == ["placed", "paid"]
    paid = db.session.get(Order, order.id)
    assert paid.paid_at is not None and not paid.holds_stock


def test_signals_leave_after_commit_with_ids(shop, db, app):
    from shop import signals

    seen: list[tuple[str, dict]] = []

    def listener(name):
        def receive(sender, **kw):
            seen.append((name, kw))

        return receive

    receivers = {name: listener(name) for name in ("order_paid", "stock_changed")}
    signals.order_paid.connect(receivers["order_paid"])
    signals.stock_changed.connect(receivers["stock_changed"])
    try:
        user = db.session.get(User, shop.buyer.id)
        order = services.place_order(user, [Line(shop.leg, 1)], ADDRESS)
        services.mark_paid(order.id, provider="demo")
    finally:
        signals.order_paid.disconnect(receivers["order_paid"])
        signals.stock_changed.disconnect(receivers["stock_changed"])
    assert ("stock_changed", {"variant_ids": [shop.leg]}) in seen
    assert ("order_paid", {"order_id": order.id}) in seen


def test_the_expire_command_prints_how_many(shop, app):
    with app.app_context():
        user = db.session.get(User, shop.buyer.id)
        then = utcnow() - timedelta(hours=1)
        for _ in range(3):
            services.place_order(user, [Line(shop.leg, 1)], ADDRESS, clock=lambda: then)
    result = app.test_cli_runner().invoke(args=["orders", "expire"])
    assert result.exit_code == 0, result.output
    assert "expired 3 order(s)" in result.output
    assert shop.stock(shop.leg) == 10


def test_the_background_pass_expires_and_survives_errors(shop, app, monkeypatch, caplog):
    from orders import tasks

    with app.app_context():
        user = db.session.get(User, shop.buyer.id)
        then = utcnow() - timedelta(hours=1)
        services.place_order(user, [Line(shop.leg, 2)], ADDRESS, clock=lambda: then)
    assert tasks.expire_once(app) == 1
    assert shop.stock(shop.leg) == 10

    def broken(**kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "expire_due", broken)
    assert tasks.expire_once(app) == 0
    assert "expiry pass failed" in caplog.text


def test_background_tasks_start_only_when_switched_on(app, monkeypatch):
    from orders import tasks

    started = []
    monkeypatch.setattr(tasks.socketio, "start_background_task", lambda *a: started.append(a))
    app.config["RUN_BACKGROUND_TASKS"] = False
    assert tasks.start_background_tasks(app) is False
    app.config["RUN_BACKGROUND_TASKS"] = True
    assert tasks.start_background_tasks(app) is True
    assert started == [(tasks.run_expiry, app)]


@pytest.mark.only_db("postgresql")
def test_stock_gone_between_the_check_and_the_commit_fails_the_whole_order(shop, db, app):
    # The visible stock passes the fast check; another buyer takes it before this order's stock
    # statement reaches the database (which only the database's CHECK can then refuse).
    user = db.session.get(User, shop.buyer.id)
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def someone_else_buys_everything(_app, **_kw) -> None:
        with other.begin() as conn:
            conn.execute(text("UPDATE variant SET stock = 0 WHERE id = :v"), {"v": shop.leg})

    # (the cart's question to live, inside the order's transaction, is the moment to strike)
    with signals.placing_order.connected_to(someone_else_buys_everything):
        with pytest.raises(SoldOut) as err:
            services.place_order(user, [Line(shop.leg, 2)], ADDRESS)
    other.dispose()

    assert err.value.variant_id == shop.leg
    assert db.session.get(Variant, shop.leg).stock == 0
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 0
    assert db.session.scalar(db.select(db.func.count(OrderEvent.id))) == 0


@pytest.mark.only_db("postgresql")
def test_the_lock_reads_what_another_request_committed_even_after_a_stale_load(shop, db, app):
    # given an unpaid order this session has already loaded (as a view does before a cancel)
    user = db.session.get(User, shop.buyer.id)
    order_id = services.place_order(user, [Line(shop.leg, 2)], ADDRESS).id
    stale = services.get_order(order_id)
    assert stale.status == "pending_payment" and stale.holds_stock
    # when another request cancels it meanwhile (its own connection, committed)
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        conn.execute(
            text("UPDATE \"order\" SET status = 'cancelled', holds_stock = false WHERE id = :id"),
            {"id": order_id},
        )
    other.dispose()
    # then the lock sees the cancel, so a second cancel is refused and restocks nothing
    assert services.lock_order(order_id).status == "cancelled"
    db.session.rollback()
    with pytest.raises(InvalidTransition):
        services.cancel_unpaid(order_id, actor_id=None, reason="cancelled_by_buyer")
    assert db.session.get(Variant, shop.leg).stock == 8


@pytest.mark.only_db("postgresql")
def test_every_locking_read_refreshes_what_the_session_loaded(shop, db, app):
    # The rule at the base (shop.database): any SELECT ... FOR UPDATE refreshes its rows,
    # whoever wrote it, not only the order service's own lock.
    stale = db.session.get(Variant, shop.leg)
    assert stale.stock == 10
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        conn.execute(text("UPDATE variant SET stock = 3 WHERE id = :v"), {"v": shop.leg})
    other.dispose()
    locked = db.session.scalar(db.select(Variant).where(Variant.id == shop.leg).with_for_update())
    assert locked is stale and locked.stock == 3
    db.session.rollback()
