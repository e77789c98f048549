"""A request whose change committed says so (issue: "answers that lie"): a tap answered 503 left
an order holding stock that the buyer never saw; confirms answered 500 although the order was
paid; one /api URL answered the server's HTML 500."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from shop import signals
from shop.errors import RECORDED
from tests.live.conftest import checkout


def stock(db, variant_id: int) -> int:
    from shop.models import Variant

    db.session.expire_all()
    return db.session.scalar(select(Variant.stock).where(Variant.id == variant_id))


@pytest.fixture
def failing_news():
    """failing_news(signal): that signal's receivers meet a receiver that raises (Redis gone
    while the news leaves, say), for this test only."""
    connected = []

    def _fail(signal):
        def receiver(_sender, **_kw):
            raise ConnectionError("the news could not leave")

        signal.connect(receiver)
        connected.append((signal, receiver))

    yield _fail
    for signal, receiver in connected:
        signal.disconnect(receiver)


def test_news_that_cannot_leave_does_not_turn_a_change_into_an_error(
    live, factory, login_as, db, failing_news
) -> None:
    live.pin()
    buyer = login_as(factory.user("buyer"))
    before = stock(db, live.variant_id)
    for news in (signals.stock_changed, signals.order_changed, signals.order_paid):
        failing_news(news)

    tap = checkout(buyer, live.session_id, live.variant_id)
    assert tap.status_code == 201, tap.get_json()
    assert stock(db, live.variant_id) == before - 1

    cancelled = buyer.post(f"/orders/{tap.get_json()['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"
    assert stock(db, live.variant_id) == before

    second = checkout(buyer, live.session_id, live.variant_id, key="tap-2").get_json()
    confirmed = buyer.post(f"/payments/demo/{second['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["status"] == "paid"


def test_a_change_whose_answer_fails_after_the_commit_says_it_went_through(
    app, live, factory, login_as, db
) -> None:
    """The database goes away right after a cancel committed, while its answer is built (the
    order is read back): the answer says the cancel went through instead of "try again", and
    asking again shows the cancelled order, restocked once. (A tap builds its answer before the
    commit, so it answers 201; the page's retry with the same Idempotency-Key finds its order.)"""
    from shop.extensions import db as ext_db

    live.pin()
    buyer = login_as(factory.user("buyer"))
    before = stock(db, live.variant_id)
    order = checkout(buyer, live.session_id, live.variant_id).get_json()
    gone = {"now": False}

    def database_gone(*_args, **_kw):
        if gone["now"]:
            raise OperationalError("SELECT …", {}, Exception("server closed the connection"))

    def after_commit(_sender, **_kw):
        gone["now"] = True

    with app.app_context():
        engine = ext_db.engine
    event.listen(engine, "before_cursor_execute", database_gone)
    signals.order_changed.connect(after_commit)
    try:
        cancel = buyer.post(f"/orders/{order['id']}/cancel")
    finally:
        signals.order_changed.disconnect(after_commit)
        event.remove(engine, "before_cursor_execute", database_gone)

    assert cancel.status_code == 503, cancel.get_json()
    assert cancel.get_json()["error"]["message"] == RECORDED
    assert stock(db, live.variant_id) == before  # it did go through

    shown = buyer.get(f"/orders/{order['id']}")
    assert shown.get_json()["status"] == "cancelled"
    again = buyer.post(f"/orders/{order['id']}/cancel")
    assert again.status_code in (200, 409)
    assert stock(db, live.variant_id) == before  # restocked once

    retried = checkout(buyer, live.session_id, live.variant_id)  # the same key, "tap-1"
    assert retried.get_json()["id"] == order["id"]


def call_wsgi(app, path: str) -> tuple[str, dict, bytes]:
    """Call the app as a PEP 3333 server does (gunicorn, werkzeug's server): a later
    start_response with the exception replaces the status while nothing has been sent. (The
    test client re-raises any exception passed to start_response, so it cannot show this.)"""
    from werkzeug.test import EnvironBuilder

    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        if "status" in answer and exc_info is None:
            raise AssertionError("headers already set")
        answer.update(status=status, headers=dict(headers))

    body = b"".join(app.wsgi_app(EnvironBuilder(path=path).get_environ(), start_response))
    return answer["status"], answer["headers"], body


def test_nothing_under_api_answers_html_even_when_flask_itself_fails(app) -> None:
    """A teardown that raises escapes Flask's error handlers (after Flask has given its
    status); the last layer still answers in API.md's shape under /api (and in plain text on
    pages), never the server's own HTML page."""

    @app.teardown_request
    def broken_teardown(_exc):
        raise RuntimeError("a teardown failed")

    status, headers, body = call_wsgi(app, "/api/v1/products")
    assert status.startswith("500")
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "server_error" and error["message"]

    status, headers, body = call_wsgi(app, "/")
    assert status.startswith("500")
    assert headers["Content-Type"].startswith("text/plain")
    assert b"<html" not in body.lower()
