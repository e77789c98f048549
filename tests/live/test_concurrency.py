"""Crowds on PostgreSQL: many buyers tapping one pinned variant at the same moment."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.conftest import ApiClient
from tests.live.conftest import checkout

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow]


def _logged_in(app, user_id: int) -> ApiClient:
    """A browser already logged in (skips hashing a password per buyer)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    api = ApiClient(client)
    api.csrf()
    return api


def _buyers(app, factory, n: int) -> list[int]:
    from shop.extensions import db
    from shop.models import User

    template = factory.user("buyer")
    with app.app_context():
        password_hash = db.session.get(User, template.id).password_hash
        users = [
            User(email=f"crowd{i}@example.com", name=f"买家{i}", password_hash=password_hash)
            for i in range(n - 1)
        ]
        db.session.add_all(users)
        db.session.commit()
        return [template.id, *(u.id for u in users)]


def _all_at_once(calls) -> list:
    """Run every call in its own thread, released together by a barrier."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _stock(app, variant_id: int) -> int:
    from shop.extensions import db
    from shop.models import Variant

    with app.app_context():
        return db.session.get(Variant, variant_id).stock


def test_a_crowd_buys_exactly_the_stock(app, factory, live):
    from orders.models import Order
    from shop.extensions import db
    from shop.models import Variant

    with app.app_context():
        db.session.get(Variant, live.variant_id).stock = 7
        db.session.commit()
    live.pin(live_price=6800)
    clients = [_logged_in(app, uid) for uid in _buyers(app, factory, 24)]

    responses = _all_at_once(
        [lambda c=c: checkout(c, live.session_id, live.variant_id, key="tap") for c in clients]
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 7 + [409] * 17
    assert {r.get_json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "sold_out"
    }
    assert _stock(app, live.variant_id) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 7


def test_per_buyer_limit_holds_under_concurrent_taps(app, factory, live):
    from orders.models import Order, OrderItem
    from shop.extensions import db

    pin = live.pin(per_buyer_limit=2)
    buyer_id = _buyers(app, factory, 1)[0]
    clients = [_logged_in(app, buyer_id) for _ in range(8)]

    responses = _all_at_once(
        [
            lambda c=c, i=i: checkout(c, live.session_id, live.variant_id, key=f"tap-{i}")
            for i, c in enumerate(clients)
        ]
    )

    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 6
    assert {r.get_json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "limit_exceeded"
    }
    assert _stock(app, live.variant_id) == 8
    with app.app_context():
        held = db.session.scalar(
            select(func.sum(OrderItem.quantity))
            .join(Order)
            .where(Order.pin_id == pin["id"], Order.buyer_id == buyer_id)
        )
        assert held == 2


def test_the_same_tap_sent_many_times_is_one_order(app, factory, live):
    from orders.models import Order
    from shop.extensions import db

    live.pin(per_buyer_limit=5)
    buyer_id = _buyers(app, factory, 1)[0]
    clients = [_logged_in(app, buyer_id) for _ in range(8)]

    responses = _all_at_once(
        [lambda c=c: checkout(c, live.session_id, live.variant_id, 2, key="same") for c in clients]
    )

    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert _stock(app, live.variant_id) == 8
    with app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 1
