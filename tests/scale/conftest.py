"""Real gunicorn+gevent server processes (as production runs them), HTTP users and a cuttable
TCP proxy for the scale-out and outage tests."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import socketio

from bench.servers import GunicornServer, base_env
from tests.scale.tcp_proxy import TcpProxy

ADDRESS = {"name": "Li Wei", "phone": "13800000000", "region": "新疆 尉犁县", "detail": "1 号"}
TIMEOUT = 20  # seconds: a request that takes longer is a hang, and the test fails on it


def scale_redis(redis_url: str) -> str:
    """This area's own Redis database index, so other areas' keys never mix with ours."""
    return redis_url.rsplit("/", 1)[0] + "/7"


class HttpUser:
    """One browser against one server process: cookie session plus the CSRF header."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.csrf = ""

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith(("/api", "/healthz")) else "/api/v1" + path)

    def refresh_csrf(self) -> None:
        self.csrf = self.http.get(self.url("/auth/csrf"), timeout=TIMEOUT).json()["csrf_token"]

    def login(self, email: str, password: str) -> HttpUser:
        self.refresh_csrf()
        response = self.post("/auth/login", {"email": email, "password": password})
        assert response.status_code == 200, response.text
        self.refresh_csrf()
        return self

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url(path), timeout=TIMEOUT)

    def post(self, path: str, json: dict | None = None, headers: dict | None = None):
        headers = {"X-CSRFToken": self.csrf, **(headers or {})}
        return self.http.post(self.url(path), json=json, headers=headers, timeout=TIMEOUT)

    def checkout(self, session_id: int, variant_id: int) -> requests.Response:
        return self.post(
            f"/live-sessions/{session_id}/checkout",
            {"variant_id": variant_id, "quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )


def browser_cookie(base_url: str, session_id: int) -> str:
    """A new browser's signed viewer cookie, as the live page gives it (a `Cookie` header)."""
    page = requests.get(f"{base_url}/live/{session_id}", timeout=TIMEOUT)
    return f"farmlive_viewer={page.cookies['farmlive_viewer']}"


class Viewer:
    """A python-socketio client watching one session on one server process; with a `cookie`
    (see browser_cookie) it counts as that browser's viewer, without one it is not counted."""

    def __init__(self, base_url: str, session_id: int, cookie: str | None = None) -> None:
        self.session_id = session_id
        self.pins: list[dict] = []
        self.got_pin = threading.Event()
        self.client = socketio.Client(reconnection=False)
        self.client.on("pinned", self._on_pinned, namespace="/live")
        headers = {"Cookie": cookie} if cookie else None
        self.client.connect(base_url, namespaces=["/live"], headers=headers, wait_timeout=TIMEOUT)

    def _on_pinned(self, data: dict) -> None:
        self.pins.append(data)
        self.got_pin.set()

    def join(self):
        return self.client.call(
            "join", {"session_id": self.session_id}, namespace="/live", timeout=TIMEOUT
        )

    def wait_for_pin(self, product_id: int, timeout: float = TIMEOUT) -> dict | None:
        """The first `pinned` for `product_id`, waiting at most `timeout` seconds."""
        for _ in range(int(timeout * 10)):
            found = next((p for p in self.pins if p["pin"]["product"]["id"] == product_id), None)
            if found is not None:
                return found
            self.got_pin.wait(0.1)
            self.got_pin.clear()
        return None

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def gunicorn(app, database_url: str, tmp_path: Path):
    """gunicorn(**env) → a started GunicornServer on this test's database (stopped after)."""
    servers: list[GunicornServer] = []

    def _start(**extra: str) -> GunicornServer:
        env = base_env(
            DATABASE_URL=database_url,
            SECRET_KEY="scale-test-secret",  # shared: a cookie from one process works on all
            RATELIMIT_ENABLED="0",
            RUN_BACKGROUND_TASKS="0",
            PAYMENT_PROVIDER="demo",
            UPLOAD_FOLDER=str(tmp_path / "uploads"),
            DB_POOL_TIMEOUT="3",
        )
        env.update(extra)
        server = GunicornServer(env, tmp_path / f"gunicorn-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture
def tcp_proxy():
    """tcp_proxy(url) → (proxy, the same URL pointed at the proxy)."""
    proxies: list[TcpProxy] = []

    def _make(url: str) -> tuple[TcpProxy, str]:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        proxies.append(proxy)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{proxy.port}"
        netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return proxy, urlunsplit(parts._replace(netloc=netloc))

    yield _make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def live_stage(app, factory):
    """A host with a live session, one product with 5 units, and 12 buyers."""
    from live import services as live
    from shop.extensions import db
    from shop.models import User

    host = factory.user("host")
    product = factory.product(variants=[{"name": "2 kg leg", "price": 8800, "stock": 5}])
    buyers = [factory.user("buyer") for _ in range(12)]
    with app.app_context():
        session = live.create_session(db.session.get(User, host.id), title="丰收直播")
        live.start_session(db.session.get(User, host.id), session.id)
        session_id = session.id
    return {"host": host, "product": product, "buyers": buyers, "session_id": session_id}
