"""API.md's "who" column, checked on the server for every guarded /api/v1 endpoint.

Each endpoint is called by every kind of user against demo data where the rows belong to someone
definite: session 1 is host@'s, order 1 (paid, two shipments) and order 2 (unpaid) are buyer@'s,
cooperative 1 is coop@'s and cooperative 2 is veg@'s. Those not allowed get 401 (logged out),
403 or 404 (not yours); those allowed get anything but those.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import make_app
from tests.test_api_fuzz import _seed

PASSWORD = "farmlive-demo"
# callers in this order, so that the allowed ones (which may change state) come last
ORDER = ["anon", "buyer2", "host2", "veg", "coop", "host", "buyer", "admin"]


@pytest.fixture
def seeded(database_url: str, tmp_path: Path):
    from shop.extensions import db
    from shop.services import create_user

    app = make_app(database_url, tmp_path, RATELIMIT_ENABLED=False)
    with app.test_request_context():
        _seed(db)
        create_user(email="host2@farmlive.test", password=PASSWORD, name="H2", role="host")
        create_user(email="buyer2@farmlive.test", password=PASSWORD, name="B2", role="buyer")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Caller:
    """One browser: logged in as `who` (or not), sending the CSRF header."""

    def __init__(self, app, who: str) -> None:
        self.client = app.test_client()
        if who != "anon":
            email = f"{who}@farmlive.test"
            response = self.post("/auth/login", {"email": email, "password": PASSWORD})
            assert response.status_code == 200, response.get_json()

    def _token(self) -> str:
        return self.client.get("/api/v1/auth/csrf").get_json()["csrf_token"]

    def call(self, method: str, path: str, body: dict | None = None):
        headers = {"X-CSRFToken": self._token(), "Idempotency-Key": f"{method}{path}"}
        return self.client.open("/api/v1" + path, method=method, json=body, headers=headers)

    def post(self, path: str, body: dict | None = None):
        return self.call("POST", path, body)


ADDRESS = {"name": "张女士", "phone": "13800000000", "region": "新疆", "detail": "人民路 1 号"}

# (method, path, body, who may) — {ship1}/{ship2}: the shipments of cooperative 1 / 2
MATRIX = [
    ("POST", "/cooperatives", {"name": "新合作社", "region": "甘肃"}, {"admin"}),
    ("PATCH", "/cooperatives/1", {"region": "新疆 尉犁"}, {"admin"}),
    ("PATCH", "/cooperatives/1", {"live_price_floor_percent": 50}, {"coop", "admin"}),
    ("PATCH", "/cooperatives/2", {"live_price_floor_percent": 50}, {"veg", "admin"}),
    ("GET", "/cooperatives/1/pins", None, {"coop", "admin"}),
    ("GET", "/cooperatives/2/pins", None, {"veg", "admin"}),
    ("GET", "/users", None, {"admin"}),
    ("PATCH", "/users/2", {"name": "王县长"}, {"admin"}),
    (
        "POST",
        "/products",
        {
            "name": "羊排",
            "cooperative_id": 1,
            "variants": [{"name": "1 kg", "price": 1, "stock": 1}],
        },
        {"coop", "admin"},
    ),
    ("PATCH", "/products/1", {"description": "新描述"}, {"coop", "admin"}),
    ("POST", "/products/1/variants", {"name": "5 kg", "price": 1, "stock": 1}, {"coop", "admin"}),
    ("PATCH", "/variants/1", {"stock": 50}, {"coop", "admin"}),
    ("PATCH", "/variants/7", {"stock": 50}, {"veg", "admin"}),
    ("GET", "/orders/1", None, {"buyer", "admin"}),
    ("POST", "/orders/2/payment", None, {"buyer"}),
    ("POST", "/payments/demo/2/confirm", None, {"buyer"}),
    ("POST", "/orders/1/confirm-receipt", None, {"buyer"}),
    ("GET", "/fulfilment/shipments/{ship1}", None, {"coop", "admin"}),
    ("GET", "/fulfilment/shipments/{ship2}", None, {"veg", "admin"}),
    ("POST", "/fulfilment/shipments/{ship1}/pack", None, {"coop", "admin"}),
    (
        "POST",
        "/fulfilment/shipments/{ship2}/ship",
        {"carrier": "顺丰", "tracking_number": "SF1"},
        {"veg", "admin"},
    ),
    ("GET", "/fulfilment/pick-list", None, {"coop", "veg", "admin"}),
    ("GET", "/reports/sales", None, {"host", "host2", "coop", "veg", "admin"}),
    ("GET", "/reports/live-sessions/1", None, {"host", "admin"}),
    ("POST", "/live-sessions", {"title": "新直播"}, {"host", "host2", "admin"}),
    ("GET", "/live-sessions/1/sales", None, {"host", "admin"}),
    ("PUT", "/live-sessions/1/lineup", {"product_ids": [1, 2]}, {"host", "admin"}),
    ("POST", "/live-sessions/1/pins", {"product_id": 2}, {"host", "admin"}),
    ("DELETE", "/live-sessions/1/pins/current", None, {"host", "admin"}),
    ("POST", "/live-sessions/1/end", None, {"host", "admin"}),
    ("POST", "/orders/2/cancel", None, {"buyer", "admin"}),
]
LOGGED_IN = [
    ("GET", "/auth/me", None),
    ("GET", "/orders", None),
    ("GET", "/live-sessions/1/checkout-defaults", None),
    ("POST", "/orders", {"items": [{"variant_id": 4, "quantity": 1}], "address": ADDRESS}),
]


def _shipments(app) -> dict[str, int]:
    from orders.models import Shipment
    from shop.extensions import db

    with app.app_context():
        rows = db.session.execute(select(Shipment.cooperative_id, Shipment.id)).all()
        return {f"ship{coop}": shipment for coop, shipment in rows}


@pytest.mark.only_db("sqlite")
def test_every_guarded_endpoint_refuses_whoever_api_md_leaves_out(seeded) -> None:
    callers = {who: Caller(seeded, who) for who in ORDER}
    ids = _shipments(seeded)
    wrong: list[str] = []
    for method, path, body, allowed in MATRIX:
        url = path.format(**ids)
        for who in ORDER:
            status = callers[who].call(method, url, body).status_code
            if who in allowed:
                ok = status not in (401, 403, 404) and status < 500
            else:
                ok = status == 401 if who == "anon" else status in (403, 404)
            if not ok:
                wrong.append(f"{method} {url} as {who}: {status}")
    for method, path, body in LOGGED_IN:
        for who in ORDER:
            status = callers[who].call(method, path, body).status_code
            if (who == "anon") != (status == 401) or status >= 500:
                wrong.append(f"{method} {path} as {who}: {status}")
    assert not wrong, "\n".join(wrong)


def test_a_coop_account_without_a_cooperative_sees_no_shipments(api, factory, db) -> None:
    from shop.models import User

    factory.product()  # some cooperative's stock, so there is something to hide
    member = factory.user("coop")
    db.session.get(User, member.id).cooperative_id = None  # e.g. left over from an import
    db.session.commit()
    api.login(member.email, member.password)
    for path in ("/fulfilment/shipments", "/fulfilment/pick-list"):
        response = api.get(path)
        assert response.status_code == 403, (path, response.get_json())
