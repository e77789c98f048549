"""GET /healthz for the proxy, and the 503 a user gets when the database cannot be reached."""

from __future__ import annotations

import pytest

from bench.servers import free_port
from shop import create_app
from shop.database import warm_pool


def test_healthz_is_ok_when_the_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def unreachable_app():
    """An app whose PostgreSQL is down: nobody listens on its port."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/farmlive"
    return create_app("config.TestConfig", SQLALCHEMY_DATABASE_URI=url)


def test_healthz_is_503_when_the_database_is_down():
    response = unreachable_app().test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert response.get_json()["checks"]["database"].startswith("error")


def test_api_answers_503_in_the_error_shape_when_the_database_is_down():
    client = unreachable_app().test_client()

    response = client.get("/api/v1/products")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.get_json() == {
        "error": {
            "code": "unavailable",
            "message": "A service we depend on is unavailable; try again.",
            "fields": {},
        }
    }


def test_a_page_answers_503_not_500_when_the_database_is_down():
    client = unreachable_app().test_client()

    response = client.get("/")
    english = client.get("/?lang=en")

    assert response.status_code == english.status_code == 503
    assert "暂时不可用" in response.get_data(as_text=True)  # Chinese first
    assert "unavailable" in english.get_data(as_text=True)


@pytest.mark.only_db("postgresql")
def test_a_worker_opens_its_whole_pool_before_the_first_request(app, db):
    # A flash crowd at a cold process must not pay for connecting to PostgreSQL.
    db.engine.dispose()

    opened = warm_pool(app)

    assert opened == app.config["DB_POOL_SIZE"] == db.engine.pool.checkedin()


def test_a_worker_starts_even_when_the_database_is_down():
    assert warm_pool(unreachable_app()) == 0
