"""Shared fixtures: a fresh app and database per test, on SQLite and (when reachable) PostgreSQL.

Every test that takes `app` runs once per database: `[sqlite]` always, `[postgresql]` when
TEST_DATABASE_URL points at a server. Mark a test `@pytest.mark.only_db("postgresql")` to run it
on one of them. With CI=true a skipped test fails the run: nothing real may silently drop out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shop import create_app  # noqa: E402
from shop.extensions import db as _db  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def require(condition: bool, reason: str) -> None:
    """Skip when a real part is missing on this machine; in CI that is a failure instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "only_db(name): run this test on one database only")
    config.addinivalue_line("markers", "browser: drives Chromium through Playwright")
    config.addinivalue_line("markers", "slow: long-running (servers, crowds)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("only_db")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        if marker and backend and backend != marker.args[0]:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run everything: {report.longrepr}"


def _pg_reachable() -> bool:
    if not PG_URL:
        return False
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None
_PG_SCHEMA_READY = False


def pg_available() -> bool:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_reachable()
    return _PG_OK


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require(pg_available(), "PostgreSQL not reachable (set TEST_DATABASE_URL)")
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        return PG_URL
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


def _truncate_all(app) -> None:
    with app.app_context():
        _db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in _db.metadata.sorted_tables)
        with _db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def make_app(database_url: str, tmp_path: Path, **overrides: Any):
    """A fresh app on `database_url` with the whole schema in place and empty tables."""
    global _PG_SCHEMA_READY
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        **overrides,
    }
    app = create_app("config.TestConfig", **config)
    with app.app_context():
        if database_url.startswith("postgresql"):
            if not _PG_SCHEMA_READY:
                _db.drop_all()
                _db.create_all()
                _PG_SCHEMA_READY = True
        else:
            _db.create_all()
    if database_url.startswith("postgresql"):
        _truncate_all(app)
    return app


@pytest.fixture
def app(database_url: str, tmp_path: Path):
    app = make_app(database_url, tmp_path)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    with app.app_context():
        yield _db
        _db.session.remove()


class ApiClient:
    """A Flask test client that speaks the API: JSON bodies and the CSRF header."""

    def __init__(self, client) -> None:
        self.client = client
        self._token: str | None = None

    def csrf(self) -> str:
        if self._token is None:
            self._token = self.client.get("/api/v1/auth/csrf").get_json()["csrf_token"]
        return self._token

    def request(self, method: str, path: str, json: Any = None, headers: dict | None = None, **kw):
        headers = dict(headers or {})
        if method.upper() not in {"GET", "HEAD", "OPTIONS"}:
            headers.setdefault("X-CSRFToken", self.csrf())
        url = path if path.startswith("/") and not path.startswith("/api") else path
        if not url.startswith("/api") and not url.startswith("/webhooks"):
            url = "/api/v1" + url
        return self.client.open(url, method=method, json=json, headers=headers, **kw)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, email: str, password: str = "password123"):
        response = self.post("/auth/login", {"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        self._token = None  # a new session gets a new token
        return response


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(app) -> ApiClient:
    return ApiClient(app.test_client())


@pytest.fixture
def new_api(app):
    """Make another independent API client (another browser)."""
    return lambda: ApiClient(app.test_client())


class Factory:
    """Create users, cooperatives and products through the services, as the app does."""

    def __init__(self, app) -> None:
        self.app = app
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def cooperative(self, name: str | None = None, region: str = "新疆 尉犁县"):
        from shop.services import create_cooperative

        with self.app.app_context():
            coop = create_cooperative(name=name or f"合作社 {self._next()}", region=region)
            return coop.id

    def user(
        self,
        role: str = "buyer",
        *,
        email: str | None = None,
        name: str | None = None,
        cooperative_id: int | None = None,
        password: str = "password123",
    ):
        from shop.services import create_user

        n = self._next()
        with self.app.app_context():
            if role == "coop" and cooperative_id is None:
                cooperative_id = self.cooperative()
            user = create_user(
                email=email or f"{role}{n}@example.com",
                password=password,
                name=name or f"{role.title()} {n}",
                role=role,
                cooperative_id=cooperative_id,
            )
            return _UserRef(user.id, user.email, password, role, user.cooperative_id)

    def product(
        self,
        cooperative_id: int | None = None,
        *,
        name: str | None = None,
        variants: list[dict] | None = None,
    ):
        """Create a product; returns {"id", "cooperative_id", "variant_ids"}."""
        from shop.extensions import db
        from shop.models import User
        from shop.services import create_product

        cooperative_id = cooperative_id or self.cooperative()
        variants = variants or [{"name": "2 kg leg", "price": 8800, "stock": 10}]
        with self.app.app_context():
            has_admin = db.session.scalar(_select_admin()) is not None
        if not has_admin:
            self.user("admin")
        with self.app.app_context():
            admin = db.session.scalar(_select_admin())
            assert isinstance(admin, User)
            product = create_product(
                admin,
                name=name or f"羊肉 {self._next()}",
                description="",
                cooperative_id=cooperative_id,
                variants=variants,
            )
            return {
                "id": product.id,
                "cooperative_id": cooperative_id,
                "variant_ids": [v.id for v in product.variants],
            }


def _select_admin():
    from sqlalchemy import select

    from shop.models import User

    return select(User).where(User.role == "admin").order_by(User.id).limit(1)


class _UserRef:
    """What a test needs of a user after its session closed: ids and credentials."""

    def __init__(self, id: int, email: str, password: str, role: str, cooperative_id: int | None):
        self.id, self.email, self.password = id, email, password
        self.role, self.cooperative_id = role, cooperative_id

    def __repr__(self) -> str:
        return f"<user {self.id} {self.role} {self.email}>"


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


@pytest.fixture
def login_as(new_api):
    """login_as(user) → an ApiClient logged in as that user."""

    def _login(user: _UserRef) -> ApiClient:
        client = new_api()
        client.login(user.email, user.password)
        return client

    return _login


# --- real servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python wsgi.py` in its own process, the way `make run` serves."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(env["FARMLIVE_TEST_LOG"])
        self.proc = subprocess.Popen(
            [sys.executable, "wsgi.py"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                requests.get(self.url + "/api/v1/auth/csrf", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def start_server(app, database_url: str, tmp_path: Path):
    """start_server(**env) → a running ServerProcess on this test's database."""
    servers: list[ServerProcess] = []

    def _start(**extra_env: str) -> ServerProcess:
        # PORT=... restarts a server where a stopped one was (clients reconnecting to it)
        port = int(extra_env.pop("PORT", 0) or 0) or free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("STRIPE_", "REDIS_URL", "DATABASE_URL", "PAYMENT_PROVIDER"))
        }
        env.update(
            DATABASE_URL=database_url,
            PORT=str(port),
            HOST="127.0.0.1",
            SECRET_KEY="test-secret-key",
            RATELIMIT_ENABLED="0",
            UPLOAD_FOLDER=str(tmp_path / "uploads"),
            FARMLIVE_TEST_LOG=str(tmp_path / f"server-{port}.log"),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        server = ServerProcess(env, port)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_url() -> str:
    require(redis_available(), f"Redis not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session")
def chromium_path() -> str:
    require(Path(CHROMIUM).exists() or bool(shutil.which("chromium")), "Chromium not installed")
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")  # type: ignore[return-value]


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        require(False, "playwright not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs() -> None:
    """Pages are Chinese only with compiled catalogs: `make setup` compiles them; a bare
    `pytest` run, or a .po edited since, gets the same by compiling here when stale."""
    root = Path(__file__).resolve().parent.parent / "shop" / "translations"
    stale = [
        po
        for po in root.glob("*/LC_MESSAGES/messages.po")
        if not po.with_suffix(".mo").exists()
        or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if stale:
        pybabel = Path(sys.executable).with_name("pybabel")
        subprocess.run([str(pybabel), "compile", "-d", str(root)], check=True, capture_output=True)
