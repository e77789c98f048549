"""A PostgreSQL connection that dies in the middle of a request (the server restarted, the
backend was terminated) is a 503 in API.md's error shape, or a 503 page: never the server's own
HTML "Internal Server Error", also when the failure only shows in the request's teardown; and
the next request works."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.shop.conftest import Browser

pytestmark = pytest.mark.only_db("postgresql")


class Terminator:
    """terminate(pid=None): end that backend, or every backend of the server under test.

    The server connects with its own `application_name` (`server_url`), so other test runs
    sharing the database are left alone.
    """

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
        self.name = f"farmlive-dying-{uuid.uuid4().hex[:8]}"
        joiner = "&" if "?" in database_url else "?"
        self.server_url = f"{database_url}{joiner}application_name={self.name}"

    def __call__(self, pid: int | None = None) -> None:
        with self.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND (pid = :pid OR (CAST(:pid AS integer) IS NULL"
                    " AND application_name = :name))"
                ),
                {"pid": pid, "name": self.name},
            )


@pytest.fixture
def terminate(database_url: str):
    terminator = Terminator(database_url)
    yield terminator
    terminator.engine.dispose()


@pytest.fixture
def dying(app, terminate):
    """Routes whose own connection is terminated after a first query: the failure then shows
    in the next query (`again`) or only when the request's transaction ends (`teardown`)."""
    from shop.extensions import db

    def kill_my_connection() -> None:
        terminate(db.session.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def view(again: bool):
        kill_my_connection()
        if again:
            db.session.execute(text("SELECT 1"))
        return {"ok": True}

    for prefix in ("/api/v1/test", "/test"):
        app.add_url_rule(f"{prefix}/again", f"again{prefix}", lambda: view(True))
        app.add_url_rule(f"{prefix}/teardown", f"teardown{prefix}", lambda: view(False))
    return app


def assert_api_unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "2"
    assert response.get_json() == {
        "error": {
            "code": "unavailable",
            "message": "A service we depend on is unavailable; try again.",
            "fields": {},
        }
    }


@pytest.mark.parametrize("where", ["again", "teardown"])
def test_api_answers_503_in_the_error_shape_then_recovers(dying, factory, login_as, where) -> None:
    api = login_as(factory.user("buyer"))

    assert_api_unavailable(api.client.get(f"/api/v1/test/{where}"))

    assert api.get("/auth/me").status_code == 200
    assert api.get("/products").status_code == 200


@pytest.mark.parametrize("where", ["again", "teardown"])
def test_a_page_answers_a_503_page_then_recovers(dying, factory, where) -> None:
    page = Browser(dying.test_client()).login(factory.user("buyer"))

    response = page.get(f"/test/{where}")

    assert response.status_code == 503
    assert response.mimetype == "text/html" and "503" in response.get_data(as_text=True)
    assert page.get("/orders").status_code == 200


def test_a_committed_change_keeps_its_answer_when_the_connection_dies_after(
    app, factory, login_as, terminate
) -> None:
    """The change happened: answering 503 would make the client retry a done write."""
    from shop.extensions import db
    from shop.models import Cooperative

    @app.post("/api/v1/test/write-then-die")
    def _write_then_die():
        db.session.add(Cooperative(name="新合作社", region="新疆"))
        db.session.commit()
        terminate(db.session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        return {"ok": True}, 201

    api = login_as(factory.user("admin"))

    assert api.post("/test/write-then-die").status_code == 201
    names = [c["name"] for c in api.get("/cooperatives").get_json()["items"]]
    assert "新合作社" in names


def hammer_while_terminating(base_url: str, email: str, password: str, terminate) -> None:
    """Four logged-in clients read pages and the API for 4 s while every backend of the
    database is terminated again and again; each answer must be 200 or our own 503."""
    http = requests.Session()
    token = http.get(base_url + "/api/v1/auth/csrf", timeout=20).json()["csrf_token"]
    login = {"email": email, "password": password}
    headers = {"X-CSRFToken": token}
    assert http.post(base_url + "/api/v1/auth/login", json=login, headers=headers).ok
    answers: list[tuple[str, int, str, str]] = []
    stop = threading.Event()

    def shop() -> None:
        client = requests.Session()
        client.cookies.update(http.cookies)
        while not stop.is_set():
            for path in ("/api/v1/products", "/api/v1/orders", "/orders", "/"):
                response = client.get(base_url + path, timeout=20)
                kind = response.headers.get("Content-Type", "")
                answers.append((path, response.status_code, kind, response.text[:200]))

    shoppers = [threading.Thread(target=shop) for _ in range(4)]
    for thread in shoppers:
        thread.start()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        terminate()
        time.sleep(0.02)
    stop.set()
    for thread in shoppers:
        thread.join(30)

    assert len(answers) > 50
    wrong = [a for a in answers if a[1] not in (200, 503)]
    assert wrong == [], wrong[:5]
    assert any(a[1] == 503 for a in answers), "no connection died: the server was not reached"
    for path, status, kind, body in answers:
        if status == 503 and path.startswith("/api/"):
            assert kind.startswith("application/json") and '"unavailable"' in body
        elif status == 503:
            # our 503 page, or its plain-text fallback when even the page needs the database
            assert kind.startswith(("text/html", "text/plain")), kind
            assert "Internal Server Error" not in body
    assert http.get(base_url + "/api/v1/orders", timeout=20).status_code == 200


@pytest.mark.slow
def test_a_real_server_never_answers_its_own_500_while_connections_die(
    start_server, factory, terminate
) -> None:
    """`python wsgi.py` (tests/scale/test_outage.py runs the same under gunicorn)."""
    factory.product()
    buyer = factory.user("buyer")
    server = start_server(DATABASE_URL=terminate.server_url)

    hammer_while_terminating(server.url, buyer.email, buyer.password, terminate)
