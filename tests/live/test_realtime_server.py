"""Against real `python wsgi.py` servers with python-socketio clients: origin check,
reconnect re-sync, and fan-out through Redis from one server process to another."""

from __future__ import annotations

import queue
import uuid

import pytest
import requests
import socketio

pytestmark = pytest.mark.slow


class Browser:
    """A requests session that logs in and sends the CSRF token, like the pages do."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.token = self.http.get(base + "/api/v1/auth/csrf", timeout=10).json()["csrf_token"]

    def login(self, user) -> Browser:
        self.post("/auth/login", {"email": user.email, "password": user.password})
        self.token = self.http.get(self.base + "/api/v1/auth/csrf", timeout=10).json()["csrf_token"]
        return self

    def post(self, path: str, body: dict | None = None) -> dict:
        response = self.http.post(
            self.base + "/api/v1" + path, json=body, headers={"X-CSRFToken": self.token}, timeout=10
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}


def browser_cookie(url: str, session_id: int) -> dict[str, str]:
    """The headers of a browser that opened the live page: its signed viewer cookie."""
    page = requests.get(f"{url}/live/{session_id}", timeout=10)
    return {"Cookie": f"farmlive_viewer={page.cookies['farmlive_viewer']}"}


class Viewer:
    """A python-socketio client that re-joins on every (re)connect, as the live page does."""

    def __init__(self, url: str, session_id: int, headers: dict[str, str] | None = None) -> None:
        self.session_id = session_id
        self.acks: queue.Queue = queue.Queue()
        self.news: queue.Queue = queue.Queue()
        self.sio = socketio.Client(reconnection_delay=0.2, reconnection_delay_max=0.5)
        self.sio.on("connect", self._join, namespace="/live")
        for name in ("pinned", "unpinned", "stock", "status"):
            self.sio.on(
                name, lambda data, name=name: self.news.put((name, data)), namespace="/live"
            )
        self.sio.connect(
            url, namespaces=["/live"], transports=["websocket"], headers=headers, wait_timeout=10
        )

    def _join(self) -> None:
        self.sio.emit(
            "join", {"session_id": self.session_id}, namespace="/live", callback=self.acks.put
        )

    def next_ack(self) -> dict:
        return self.acks.get(timeout=15)

    def next_news(self, name: str) -> dict:
        while True:
            got, data = self.news.get(timeout=15)
            if got == name:
                return data

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def live_session(factory, host):
    """A live session made in the test process, in the database the servers use."""
    product = factory.product(variants=[{"name": "5 kg", "price": 22900, "stock": 50}])
    return {"host": host, "product": product}


def _start_session(browser: Browser, product: dict) -> int:
    session_id = browser.post("/live-sessions", {"title": "直播"})["id"]
    browser.post(f"/live-sessions/{session_id}/start")
    return session_id


def _pin(browser: Browser, session_id: int, product: dict, price: int) -> dict:
    variant_id = product["variant_ids"][0]
    return browser.post(
        f"/live-sessions/{session_id}/pins",
        {"product_id": product["id"], "live_prices": {str(variant_id): price}},
    )


def test_a_foreign_origin_is_refused(start_server):
    """Polling, so the Origin header is exactly the one given (websocket-client adds its own)."""
    server = start_server()

    foreign = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        foreign.connect(
            server.url,
            namespaces=["/live"],
            headers={"Origin": "https://evil.example"},
            transports=["polling"],
            wait_timeout=5,
        )
    own = socketio.Client()
    own.connect(
        server.url,
        namespaces=["/live"],
        headers={"Origin": server.url},
        transports=["polling"],
        wait_timeout=5,
    )
    assert own.connected
    own.disconnect()


def test_reconnect_resyncs_the_pin_missed_while_away(start_server, live_session, app):
    server = start_server()
    host = Browser(server.url).login(live_session["host"])
    session_id = _start_session(host, live_session["product"])
    viewer = Viewer(server.url, session_id)
    try:
        assert viewer.next_ack()["state"]["pinned"] is None

        server.stop()  # the connection drops; the viewer keeps trying
        pin_id = _pin_while_nobody_listens(app, live_session, session_id, price=19900)
        start_server(PORT=str(server.port))

        state = viewer.next_ack()["state"]  # the re-join after reconnecting
        assert state["status"] == "live"
        assert state["pinned"]["id"] == pin_id
        assert state["pinned"]["variants"][0]["live_price"] == 19900
        assert state["pinned"]["variants"][0]["stock"] == 50
    finally:
        viewer.close()


def _pin_while_nobody_listens(app, live_session: dict, session_id: int, price: int) -> int:
    """The host pins while the viewer's server is down: the viewer misses the `pinned` news."""
    from live import services
    from shop.extensions import db
    from shop.models import User

    product = live_session["product"]
    with app.test_request_context():
        host = db.session.get(User, live_session["host"].id)
        pin = services.pin_product(
            host,
            session_id,
            product_id=product["id"],
            live_prices={str(product["variant_ids"][0]): price},
        )
        return pin.id


def test_a_pin_made_on_one_process_reaches_a_viewer_on_another(
    start_server, live_session, redis_url
):
    env = {"REDIS_URL": redis_url, "SOCKETIO_CHANNEL": f"farmlive-test-live-{uuid.uuid4().hex}"}
    server_a, server_b = start_server(**env), start_server(**env)
    host = Browser(server_a.url).login(live_session["host"])
    session_id = _start_session(host, live_session["product"])

    on_b = Viewer(server_b.url, session_id, browser_cookie(server_b.url, session_id))
    on_b.next_ack()
    on_a = Viewer(server_a.url, session_id, browser_cookie(server_a.url, session_id))
    try:
        assert on_a.next_ack()["state"]["viewers"] == 2  # counted across both processes

        pin = _pin(host, session_id, live_session["product"], price=18800)
        received = on_b.next_news("pinned")
        assert received["session_id"] == session_id and received["pin"]["id"] == pin["id"]
        assert on_a.next_news("pinned")["pin"]["id"] == pin["id"]

        host.http.delete(
            f"{server_a.url}/api/v1/live-sessions/{session_id}/pins/current",
            headers={"X-CSRFToken": host.token},
            timeout=10,
        )
        assert on_b.next_news("unpinned") == {"session_id": session_id}
    finally:
        on_a.close()
        on_b.close()
