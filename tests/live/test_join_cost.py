"""A join costs no database round trip: 1,200 viewers arriving in ten seconds took every pooled
connection ("QueuePool limit of size 20 reached"), joins answered "unavailable" and the expiry
pass failed for lack of a connection (issue: "the whole audience at once").

The session and its pin come from this process's rooms, kept current by the news; visits and
counts are written in batches by the ledger; socket events and background work have their own
connections on PostgreSQL.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select

from tests.conftest import make_app
from tests.live.conftest import events


@pytest.fixture
def statements(app):
    """statements() → the SQL statements the app ran since the last call."""
    from shop.extensions import db

    seen: list[str] = []
    lock = threading.Lock()

    def count(_conn, _cursor, statement, *_args, **_kw):
        with lock:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)

    def taken() -> list[str]:
        with lock:
            out, seen[:] = list(seen), []
        return out

    yield taken
    event.remove(engine, "before_cursor_execute", count)


def joined(sio, session_id: int) -> dict:
    ack = sio.emit("join", {"session_id": session_id}, namespace="/live", callback=True)
    assert ack["ok"] is True, ack
    return ack["state"]


def test_viewers_join_a_warm_room_without_a_single_statement(
    app, live, live_browser, socket_client, statements
) -> None:
    app.config["VIEWER_RECORD_SECONDS"] = 60  # the ledger writes later, off the join
    live.pin(live_price=6800)
    first = socket_client(live_browser(live.session_id))
    assert joined(first, live.session_id)["pinned"]["variants"][0]["live_price"] == 6800
    browsers = [live_browser(live.session_id) for _ in range(30)]  # each opened the page
    statements()

    counts = []
    for browser in browsers:
        state = joined(socket_client(browser), live.session_id)
        assert state["status"] == "live" and state["pinned"]["product"]["id"] == live.product["id"]
        counts.append(state["viewers"])

    assert statements() == [], "a viewer's join ran SQL"
    assert counts == list(range(2, 32))  # each counted once, as before

    browser = live_browser(live.session_id)
    statements()
    page = browser.client.get(f"/live/{live.session_id}")
    assert page.status_code == 200 and '"live_price": 6800' in page.get_data(as_text=True)
    assert statements() == [], "an anonymous visitor's live page read the database"


def test_the_rooms_follow_the_news_pins_stock_and_the_end(
    app, live, socket_client, live_browser, login_as, factory, statements
) -> None:
    from live import rooms

    rooms.rooms(app).max_age = 3600  # only the news may change what a join is told
    viewer = socket_client(live_browser(live.session_id))
    assert joined(viewer, live.session_id)["pinned"] is None

    live.pin(live_price=6500)
    buyer = login_as(factory.user("buyer"))
    from tests.live.conftest import checkout

    assert checkout(buyer, live.session_id, live.variant_id, 3).status_code == 201
    statements()
    state = joined(socket_client(), live.session_id)
    assert statements() == []
    variant = state["pinned"]["variants"][0]
    assert (variant["live_price"], variant["stock"]) == (6500, 7)

    assert live.host_api.delete(f"/live-sessions/{live.session_id}/pins/current").status_code
    assert joined(socket_client(), live.session_id)["pinned"] is None
    assert live.host_api.post(f"/live-sessions/{live.session_id}/end").status_code == 200
    assert joined(socket_client(), live.session_id)["status"] == "ended"
    assert events(viewer, "status")[-1]["status"] == "ended"


def test_visits_and_counts_are_written_in_batches_and_a_rejoin_is_not_a_new_visit(
    app, live, live_browser, socket_client, db
) -> None:
    from live import viewers
    from live.models import LiveSession, ViewerVisit

    app.config["VIEWER_RECORD_SECONDS"] = 60
    browsers = [live_browser(live.session_id) for _ in range(5)]
    sockets = [socket_client(b) for b in browsers]
    for sio in sockets:
        joined(sio, live.session_id)
    visits = select(func.count()).select_from(ViewerVisit)
    assert db.session.scalar(visits) == 0  # noted, not written yet

    viewers.ledger(app).write(app)
    db.session.rollback()  # a fresh read, after the ledger's own transaction
    assert db.session.scalar(visits) == 5
    assert db.session.get(LiveSession, live.session_id).peak_viewers == 5

    sockets[0].disconnect(namespace="/live")  # one drops and comes back: the same viewer
    joined(socket_client(browsers[0]), live.session_id)
    viewers.ledger(app).write(app)
    db.session.rollback()  # a fresh read, after the ledger's own transaction
    assert db.session.scalar(visits) == 5


def test_a_browser_that_logs_in_within_one_batch_is_one_visit(app, live, factory, db) -> None:
    """Watching anonymously, then logging in in the buy sheet: both joins land in the same
    batch, and the browser's visit becomes the user's (one unique viewer, as before)."""
    from live import viewers
    from live.models import ViewerVisit

    app.config["VIEWER_RECORD_SECONDS"] = 60
    user = factory.user("buyer")
    ledger = viewers.ledger(app)
    ledger.visit(app, live.session_id, "a:browser-1", None, "a:browser-1")
    ledger.visit(app, live.session_id, f"u:{user.id}", user.id, "a:browser-1")

    ledger.write(app)

    db.session.rollback()
    rows = db.session.execute(select(ViewerVisit.viewer_key, ViewerVisit.user_id)).all()
    assert [tuple(row) for row in rows] == [(f"u:{user.id}", user.id)]


# --- separate connection budgets (PostgreSQL) --------------------------------------------------


@pytest.fixture
def budget_app(database_url, tmp_path):
    """An app whose requests' pool is 2 connections, waited for 1 s, with its own budgets."""
    from shop import budgets
    from shop.extensions import db

    app = make_app(
        database_url,
        tmp_path,
        DB_POOL_SIZE=2,
        DB_POOL_TIMEOUT=1,
        DB_SOCKET_POOL_SIZE=2,
        DB_BACKGROUND_POOL_SIZE=1,
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    budgets.dispose(app)


@pytest.mark.only_db("postgresql")
def test_joins_and_the_expiry_pass_have_connections_while_requests_hold_them_all(
    budget_app, database_url, tmp_path
) -> None:
    from live import services as live_services
    from orders import tasks
    from shop import budgets
    from shop.extensions import db, socketio
    from shop.health import expect_loop
    from shop.models import Role, User
    from shop.services import create_user

    app = budget_app
    with app.app_context():
        host = create_user(email="h@example.com", password="password123", name="H", role="host")
        session = live_services.create_session(db.session.get(User, host.id), title="直播")
        live_services.start_session(db.session.get(User, host.id), session.id)
        session_id = session.id
        assert host.role == Role.HOST
    assert set(budgets.engines(app)) == {"sockets", "background"}

    with app.app_context():
        held = [db.engine.connect() for _ in range(2)]  # a flash crowd holds every connection
    try:
        sio = socketio.test_client(app, namespace="/live")
        ack = sio.emit("join", {"session_id": session_id}, namespace="/live", callback=True)
        assert ack["ok"] is True, ack  # a cold room: read on the socket events' own connection
        expect_loop(app, "expiry", 5.0)
        app.extensions["farmlive.loops"]["expiry"]["last"] = 0.0
        tasks.expire_once(app)  # nothing is due; the pass must still get a connection
        assert app.extensions["farmlive.loops"]["expiry"]["last"] > 0, "the expiry pass failed"
        sio.disconnect(namespace="/live")
    finally:
        for connection in held:
            connection.close()
