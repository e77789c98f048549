"""A join costs no database round trip: 1,200 viewers arriving in ten seconds took every pooled
connection ("QueuePool limit of size 20 reached"), joins answered "unavailable" and the expiry
pass failed for lack of a connection (issue: "the whole audience at once").

The session and its pin come from this process's rooms, kept current by the news; visits and
counts are written in batches by the ledger; socket events and background work have their own
connections on PostgreSQL.
"""

from __future__ import annotations

import threading
import time

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


def _csrf_of(page) -> str:
    import re

    return re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))[1]


def test_anonymous_visitors_share_one_rendering_per_room_state(
    app, live, factory, login_as, monkeypatch
) -> None:
    """The live page is rendered once per room state (and language) for every anonymous
    visitor, with each visitor's own working CSRF token; a pin renders it again; a logged-in
    buyer's page is their own."""
    from live import views

    renders = []
    render = views._render_watch
    monkeypatch.setattr(
        views, "_render_watch", lambda room, sid: renders.append(sid) or render(room, sid)
    )
    visitors = [app.test_client() for _ in range(3)]
    pages = [visitor.get(f"/live/{live.session_id}") for visitor in visitors]
    assert [page.status_code for page in pages] == [200] * 3 and len(renders) == 1
    tokens = [_csrf_of(page) for page in pages]
    assert len(set(tokens)) == 3
    for visitor, token in zip(visitors, tokens, strict=True):  # each token is that visitor's
        login = visitor.post(
            "/api/v1/auth/login",
            json={"email": "nobody@example.com", "password": "wrong-password"},
            headers={"X-CSRFToken": token},
        )
        assert login.status_code == 401  # past the CSRF check: only the password was wrong

    live.pin(live_price=6400)
    page = visitors[0].get(f"/live/{live.session_id}")
    assert len(renders) == 2 and '"live_price": 6400' in page.get_data(as_text=True)
    english = visitors[1].get(f"/live/{live.session_id}", headers={"Accept-Language": "en"})
    assert english.status_code == 200

    buyer = login_as(factory.user("buyer", name="买家小李"))
    mine = buyer.client.get(f"/live/{live.session_id}").get_data(as_text=True)
    assert "买家小李" in mine and "买家小李" not in page.get_data(as_text=True)


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


def test_a_room_due_for_renewal_is_renewed_in_the_background_while_joins_go_on(
    app, live, socket_client, monkeypatch
) -> None:
    """Every join of a process waited 1.4 s behind the read that renewed its room at 1,200
    arriving viewers: now the joins are answered from the kept room while one read renews it."""
    from live import rooms

    own = rooms.rooms(app)
    joined(socket_client(), live.session_id)  # the room is read and kept
    reading, release = threading.Event(), threading.Event()
    read = own._read

    def slow_read(session_id: int):
        reading.set()
        assert release.wait(10)
        return read(session_id)

    monkeypatch.setattr(own, "_read", slow_read)
    own.max_age = 0.01
    time.sleep(0.02)
    states = [joined(socket_client(), live.session_id) for _ in range(3)]  # while it reads
    assert reading.wait(5), "the old room was not renewed"
    assert [state["status"] for state in states] == ["live"] * 3

    release.set()
    live.pin(live_price=6300)  # news still applies to the renewed room
    own.max_age = 3600
    deadline = time.monotonic() + 5
    while own._renewals._running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert joined(socket_client(), live.session_id)["pinned"]["variants"][0]["live_price"] == 6300


def test_a_renewed_room_shows_what_changed_without_news(app, live, socket_client, db) -> None:
    """A title, a cover or a product photo changes without news: the background renewal reads
    them (with their URLs) and the next joins and pages show them."""
    from live import rooms
    from live.models import LiveSession
    from shop.models import Product

    own = rooms.rooms(app)
    live.pin(live_price=6500)
    joined(socket_client(), live.session_id)
    session = db.session.get(LiveSession, live.session_id)
    session.title, session.cover = "新标题", "cover.jpg"
    db.session.get(Product, live.product["id"]).photo = "leg.jpg"
    db.session.commit()

    own.max_age = 0.01
    time.sleep(0.02)
    joined(socket_client(), live.session_id)  # given the old room; one read renews it
    own.max_age = 3600
    deadline = time.monotonic() + 5
    while own._renewals._running and time.monotonic() < deadline:
        time.sleep(0.01)
    room = own.get(live.session_id)
    assert room.session["title"] == "新标题"
    assert room.session["cover_url"].endswith("/cover.jpg")
    assert room.pin["product"]["photo_url"].endswith("/leg.jpg")


def test_a_pin_sends_its_news_and_answer_without_reading_them_back(
    app, live, socket_client
) -> None:
    """While the flash crowd pays, every round trip waits for the busy process: the pin's news
    and its answer are built from what its transaction loaded, not read back after it."""
    from shop.extensions import db

    viewer = socket_client()
    joined(viewer, live.session_id)
    with app.app_context():
        engine = db.engine
    trail: list[str] = []

    def statement(_conn, _cursor, text, *_args, **_kw):
        trail.append(text)

    def committed(_conn):
        trail.append("COMMIT")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", committed)
    try:
        live.pin(live_price=6600)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", committed)

    after = trail[len(trail) - trail[::-1].index("COMMIT") :]
    assert after == [], f"read back after the commit: {after}"
    pin = events(viewer, "pinned")[-1]["pin"]
    assert pin["product"]["id"] == live.product["id"]
    assert [(v["live_price"], v["stock"]) for v in pin["variants"]] == [(6600, 10)]


def test_a_pin_sent_while_a_joining_viewer_reads_the_room_reaches_it(
    app, live, socket_client, monkeypatch
) -> None:
    """A viewer whose join read the room just before the host pinned still gets the pin: it
    is in the room before the state is read (after a restart every join reads it first)."""
    from live import rooms

    own = rooms.rooms(app)
    read = own._read

    def read_then_the_host_pins(session_id: int):
        room = read(session_id)  # the state without the pin
        live.pin(live_price=6600)
        return room

    monkeypatch.setattr(own, "_rooms", {})
    monkeypatch.setattr(own, "_read", read_then_the_host_pins)
    viewer = socket_client()
    state = joined(viewer, live.session_id)
    monkeypatch.undo()

    assert state["pinned"] is None
    pins = events(viewer, "pinned")
    assert [pin["pin"]["variants"][0]["live_price"] for pin in pins] == [6600]


def test_a_refused_join_leaves_no_socket_in_the_room(socket_client) -> None:
    viewer = socket_client()
    ack = viewer.emit("join", {"session_id": 999_999}, namespace="/live", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "live_session_not_found"
    from live import broadcast

    broadcast.emit("pinned", {"session_id": 999_999, "pin": None}, 999_999)
    assert events(viewer, "pinned") == []


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


# --- the chat history every arriving page loads ------------------------------------------------


def _history(client, session_id: int, kind: str | None = None) -> list[dict]:
    query = f"?kind={kind}" if kind else ""
    answer = client.get(f"/api/v1/live-sessions/{session_id}/messages{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["items"]


def test_the_history_is_read_once_and_then_follows_the_chat(
    app, live, factory, login_as, statements
) -> None:
    """While questions arrive several times a second, every arriving viewer's page still loads
    the history from memory: a message adds its line, an answer or a hide changes it."""
    from live import rooms

    app.config["CHAT_RATE_LIMIT_SECONDS"] = 0
    rooms.histories(app).max_age = 3600  # only the news may change what is kept
    asker = login_as(factory.user("buyer", name="李"))
    first = _post_message(asker, live.session_id, "几天到货？", "question")
    pages = [app.test_client() for _ in range(5)]
    assert [m["body"] for m in _history(pages[0], live.session_id)] == ["几天到货？"]
    statements()

    second = _post_message(asker, live.session_id, "包邮吗？", "question")
    third = _post_message(asker, live.session_id, "骂人的话")
    path = f"/live-sessions/{live.session_id}/messages"
    assert live.host_api.patch(f"{path}/{first}", {"answered": True}).status_code == 200
    assert live.host_api.patch(f"{path}/{third}", {"hidden": True}).status_code == 200
    statements()

    seen = [_history(page, live.session_id) for page in pages]
    assert statements() == [], "an arriving page's history read the database"
    fresh = _read_history(app, live.session_id)
    assert all(items == fresh for items in seen)  # exactly what a read would give
    assert [(m["id"], m["body"], m["answered"]) for m in fresh] == [
        (first, "几天到货？", True),
        (second, "包邮吗？", False),
    ]
    assert fresh[0]["user_name"] == "李" and fresh[0]["kind"] == "question"
    questions = _history(pages[0], live.session_id, kind="question")
    assert [m["id"] for m in questions] == [first, second]


def test_news_that_arrives_during_a_read_is_not_lost(app) -> None:
    """A read that began before a message committed does not see it; its news, heard while
    the read was under way, is applied to what the read returns."""
    from live.rooms import Histories

    histories = Histories(max_age=3600, limit=3)
    line = {"session_id": 7, "user_name": "李", "kind": "chat", "answered": False, "votes": 0}
    first = {**line, "id": 1, "body": "一", "created_at": "2026-12-07T10:00:00+00:00"}
    second = {**line, "id": 2, "body": "二", "created_at": "2026-12-07T10:00:01+00:00"}

    def read_then_hear_news() -> list[dict]:
        histories.apply("message", second)  # committed after the read's snapshot
        histories.apply("message_update", {"session_id": 7, "id": 1, "answered": True})
        return [first]

    with app.app_context():
        body = histories.get(7, None, read_then_hear_news)
        assert [(m["id"], m["answered"]) for m in _items(body)] == [(1, True), (2, False)]
        for n in range(3, 6):  # the window keeps the newest `limit` lines
            histories.apply("message", {**second, "id": n})
        body = histories.get(7, None, lambda: pytest.fail("read again"))
        assert [m["id"] for m in _items(body)] == [3, 4, 5]


def _items(body: bytes) -> list[dict]:
    import json

    return json.loads(body)["items"]


def _post_message(client, session_id: int, body: str, kind: str = "chat") -> int:
    answer = client.post(f"/live-sessions/{session_id}/messages", {"body": body, "kind": kind})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def _read_history(app, session_id: int) -> list[dict]:
    from live import chat
    from live.schemas import MessageListSchema

    with app.app_context():
        items = MessageListSchema().dump({"items": chat.list_messages(session_id)})["items"]
    import json

    return json.loads(json.dumps(items))


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
