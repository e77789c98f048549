"""Input never becomes a 500 or a poisoned row: text that cannot be stored is refused, naming
the field, on every endpoint, form and socket event; a row stored before that still shows; an
error page never trips over the transaction that failed."""

from __future__ import annotations

import json

import pytest
from marshmallow import fields

from shop.schemas import BaseSchema
from tests.shop.conftest import Browser

SURROGATE = "Zhang\ud800"  # a lone UTF-16 surrogate: JSON can carry it, UTF-8 cannot
NUL = "Zh\x00ang"
ADDRESS = {
    "name": "王芳",
    "phone": "13800138000",
    "region": "新疆 库尔勒市",
    "detail": "人民路 8 号",
}
BAD_UTF8 = "Must be valid UTF-8 text."
BAD_NUL = "Must not contain NUL characters."


def send(api, method: str, path: str, body) -> object:
    """JSON with \\u escapes, as a browser's JSON.stringify sends a lone surrogate."""
    return api.request(method, path, data=json.dumps(body), content_type="application/json")


def assert_refused(response, *path: str | int, message: str = BAD_UTF8) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    node = error["fields"]
    for part in path:
        node = node[str(part)]
    assert node == [message]


# --- the API: one rule in BaseSchema, and the request check before it -------------------------


def test_register_and_login_refuse_a_lone_surrogate_naming_the_field(api, factory, db) -> None:
    from shop.models import User

    body = {"email": "wang@example.com", "password": "password123", "name": SURROGATE}
    assert_refused(send(api, "POST", "/auth/register", body), "name")
    body = {"email": "wang@example.com", "password": SURROGATE}
    assert_refused(send(api, "POST", "/auth/login", body), "password")
    assert db.session.scalar(db.select(User).where(User.email == "wang@example.com")) is None


@pytest.mark.parametrize("bad, message", [(SURROGATE, BAD_UTF8), (NUL, BAD_NUL)])
def test_an_order_address_with_bad_text_is_refused_and_nothing_is_placed(
    factory, login_as, db, bad: str, message: str
) -> None:
    from orders.models import Order

    product = factory.product()
    buyer = login_as(factory.user("buyer"))
    body = {
        "items": [{"variant_id": product["variant_ids"][0], "quantity": 1}],
        "address": {**ADDRESS, "detail": bad},
    }

    assert_refused(send(buyer, "POST", "/orders", body), "address", "detail", message=message)
    assert db.session.scalar(db.select(db.func.count()).select_from(Order)) == 0


def test_nested_fields_list_items_and_dict_keys_are_named(factory, login_as) -> None:
    coop_id = factory.cooperative()
    admin = login_as(factory.user("admin"))
    body = {
        "name": "香梨",
        "cooperative_id": coop_id,
        "variants": [{"name": "5 kg", "price": 100, "stock": 1}, {"name": SURROGATE}],
    }
    assert_refused(send(admin, "POST", "/products", body), "variants", 1, "name")

    host = login_as(factory.user("host"))
    product = factory.product()
    session_id = host.post("/live-sessions", {"title": "直播"}).get_json()["id"]
    assert host.post(f"/live-sessions/{session_id}/start").status_code == 200
    body = {"product_id": product["id"], "live_prices": {"1\ud800": 100}}
    response = send(host, "POST", f"/live-sessions/{session_id}/pins", body)
    assert_refused(response, "live_prices", "1\\ud800")  # the key named with an escape


def test_errors_on_list_items_and_on_the_whole_list_are_answered_together(
    app, factory, login_as, db
) -> None:
    """The reported crash: item 1 is not an object and two variants share a name, so the errors
    are keyed 1 and "_schema" in one dict; the JSON writer sorts keys (Flask's default) and
    crashed on mixing them, answering 500 instead of the 422."""
    from shop.models import Product

    assert app.json.sort_keys
    admin = login_as(factory.user("admin"))
    leg = {"name": "2 kg leg", "price": 8800, "stock": 3}
    body = {"name": "羊腿", "cooperative_id": factory.cooperative(), "variants": [leg, 0, leg]}

    response = admin.post("/products", body)

    assert response.status_code == 422, response.get_data(as_text=True)
    variants = response.get_json()["error"]["fields"]["variants"]
    assert set(variants) == {"1", "_schema"}
    assert db.session.scalar(db.select(db.func.count()).select_from(Product)) == 0


def test_chat_over_http_refuses_a_lone_surrogate(factory, login_as) -> None:
    host = login_as(factory.user("host"))
    session_id = host.post("/live-sessions", {"title": "直播"}).get_json()["id"]
    host.post(f"/live-sessions/{session_id}/start")
    buyer = login_as(factory.user("buyer"))
    body = {"body": f"你好 {SURROGATE}", "kind": "chat"}

    assert_refused(send(buyer, "POST", f"/live-sessions/{session_id}/messages", body), "body")


def test_every_base_schema_refuses_bad_text_wherever_it_is() -> None:
    class Probe(BaseSchema):
        name = fields.Str()
        tags = fields.List(fields.Str())
        prices = fields.Dict(keys=fields.Str(), values=fields.Int())

    errors = Probe().validate({"name": NUL, "tags": ["ok", SURROGATE], "prices": {"a\x00": 1}})

    assert errors == {"name": [BAD_NUL], "tags": {1: [BAD_UTF8]}, "prices": {"a\\x00": [BAD_NUL]}}
    assert Probe(many=True).validate([{"name": "ok"}, {"name": SURROGATE}]) == {
        1: {"name": [BAD_UTF8]}
    }


# --- pages: the same refusal before any view reads request.form -------------------------------


def test_a_page_form_with_nul_is_a_422_page_naming_the_field(app, factory) -> None:
    from shop.models import User

    page = Browser(app.test_client())
    form = {"email": "wang@example.com", "password": "password123", "name": NUL}

    response = page.post("/register", form)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<code>name</code>" in html and "NUL" in html
    with app.app_context():
        from shop.extensions import db

        assert db.session.scalar(db.select(User).where(User.email == "wang@example.com")) is None


def test_a_query_string_or_path_with_nul_is_refused_not_queried(app, client) -> None:
    assert client.get("/?q=lamb%00").status_code == 422
    assert client.get("/trace/abc%00def").status_code == 422
    response = client.get("/api/v1/products?q=lamb%00")
    assert_refused(response, "q", message=BAD_NUL)


# --- the read side: a row stored before the checks existed ------------------------------------


def test_a_stored_surrogate_shows_as_a_replacement_character(app, factory, login_as) -> None:
    """A JSON column stores "\\ud800" escaped and hands back a lone surrogate (both databases)."""
    from live.models import LiveSession
    from orders.models import Order
    from orders.services import Line, mark_paid, place_order
    from shop.extensions import db
    from shop.models import User

    product = factory.product()
    buyer_ref, admin_ref = factory.user("buyer"), factory.user("admin")
    with app.app_context():
        buyer = db.session.get(User, buyer_ref.id)
        order = place_order(buyer, [Line(product["variant_ids"][0], 1)], ADDRESS)
        mark_paid(order.id, provider="demo")
        order = db.session.get(Order, order.id)
        order.address = {**ADDRESS, "name": SURROGATE}
        buyer.saved_address = {**ADDRESS, "detail": SURROGATE}
        live = LiveSession(host_id=admin_ref.id, title="直播")
        db.session.add(live)
        db.session.commit()
        order_id, session_id = order.id, live.id

    for who, path in [
        (buyer_ref, f"/api/v1/live-sessions/{session_id}/checkout-defaults"),
        (buyer_ref, f"/orders/{order_id}"),
        (buyer_ref, f"/live/{session_id}"),  # the buy sheet's saved address, as JSON in a page
        (admin_ref, f"/orders/{order_id}"),
    ]:
        response = login_as(who).client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert "Zhang\ufffd" in response.get_data(as_text=True), path


# --- error pages start from a clean transaction -----------------------------------------------


def test_an_error_page_after_a_failed_flush_is_not_a_pending_rollback(app, factory) -> None:
    from shop.extensions import db
    from shop.models import Variant

    product = factory.product()
    variant_id = product["variant_ids"][0]

    @app.post("/test/overflow")
    def _overflow():
        db.session.get(Variant, variant_id).stock = 2**63  # fits no INTEGER column
        db.session.flush()
        return "stored"

    page = Browser(app.test_client()).login(factory.user("admin"))
    response = page.post("/test/overflow")

    assert response.status_code == 400  # a value out of range, on a page that rendered
    assert page.get("/").status_code == 200


# --- socket events: one decorator answers every payload ---------------------------------------


def test_socket_event_acknowledges_odd_payloads_in_the_error_shape(app) -> None:
    from shop.errors import Conflict
    from shop.sockets import socket_event

    class Join(BaseSchema):
        session_id = fields.Int(required=True, strict=True)

    seen: list[dict] = []

    @socket_event(Join())
    def on_join(data: dict) -> dict:
        if data["session_id"] == 9:
            raise Conflict()
        seen.append(data)
        return {"ok": True}

    with app.test_request_context():
        answers = {
            "nothing": on_join(),
            "None": on_join(None),
            "list": on_join([{"session_id": 1}]),
            "two": on_join({"session_id": 1}, {}),
            "surrogate": on_join({"session_id": 1, "note": SURROGATE}),
            "string id": on_join({"session_id": "1"}),
            "domain": on_join({"session_id": 9}),
        }
        assert on_join({"session_id": 3}) == {"ok": True}

    codes = {name: answer["error"]["code"] for name, answer in answers.items()}
    assert codes == {
        "nothing": "bad_request",
        "None": "bad_request",
        "list": "bad_request",
        "two": "bad_request",
        "surrogate": "invalid",
        "string id": "invalid",
        "domain": "conflict",
    }
    assert answers["surrogate"]["error"]["fields"] == {"note": [BAD_UTF8]}
    assert all(
        a["ok"] is False and set(a["error"]) == {"code", "message", "fields"}
        for a in answers.values()
    )
    assert seen == [{"session_id": 3}]
