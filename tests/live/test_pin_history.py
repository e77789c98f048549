"""A cooperative's pin history: GET /cooperatives/<id>/pins, /coop/pins and the /coop section."""

from __future__ import annotations

import re

import pytest

from tests.shop.conftest import Browser


@pytest.fixture
def history(live, factory, login_as):
    """Two pins of the live product's cooperative (the first ended), one of another's."""
    coop_id = live.product["cooperative_id"]
    second = factory.product(coop_id, variants=[{"name": "整只", "price": 120000, "stock": 3}])
    theirs = factory.product(variants=[{"name": "5 斤", "price": 5000, "stock": 9}])
    first_pin = live.pin(live_price=6800, per_buyer_limit=2)
    path = f"/live-sessions/{live.session_id}/pins"
    foreign = live.host_api.post(path, {"product_id": theirs["id"]}).get_json()
    body = {"product_id": second["id"], "live_prices": {str(second["variant_ids"][0]): 99000}}
    second_pin = live.host_api.post(path, body).get_json()
    return {
        "coop_id": coop_id,
        "other_coop_id": theirs["cooperative_id"],
        "member": factory.user("coop", cooperative_id=coop_id),
        "first": first_pin,
        "second": second_pin,
        "foreign": foreign,
        "second_product": second,
    }


def test_the_cooperative_lists_its_own_pins_newest_first(live, history, login_as):
    # when the cooperative's member reads its history
    response = login_as(history["member"]).get(f"/cooperatives/{history['coop_id']}/pins")

    # then both its pins are there, newest first, and the other cooperative's pin is not
    assert response.status_code == 200, response.get_json()
    items = response.get_json()["items"]
    assert [p["id"] for p in items] == [history["second"]["id"], history["first"]["id"]]
    newest, oldest = items
    assert newest["ended_at"] is None and oldest["ended_at"] is not None
    assert oldest == {
        "id": history["first"]["id"],
        "session_id": live.session_id,
        "session_title": "尉犁羊肉专场",
        "host_id": live.host.id,
        "host_name": "王副县长",
        "product_id": live.product["id"],
        "product_name": oldest["product_name"],
        "per_buyer_limit": 2,
        "created_at": oldest["created_at"],
        "ended_at": oldest["ended_at"],
        "currency": "CNY",
        "prices": [
            {
                "variant_id": live.variant_id,
                "variant_name": "2 kg 后腿",
                "regular_price": 8800,
                "live_price": 6800,
            }
        ],
    }
    assert newest["prices"][0]["live_price"] == 99000 and newest["per_buyer_limit"] is None


def test_limit_and_before_page_through_the_history(history, login_as):
    member = login_as(history["member"])
    path = f"/cooperatives/{history['coop_id']}/pins"

    first_page = member.get(path + "?limit=1").get_json()["items"]
    next_page = member.get(f"{path}?limit=1&before={first_page[0]['id']}").get_json()["items"]

    assert [p["id"] for p in first_page] == [history["second"]["id"]]
    assert [p["id"] for p in next_page] == [history["first"]["id"]]
    assert member.get(path + "?limit=0").status_code == 422


def test_admins_read_any_cooperatives_history(history, factory, login_as):
    admin = login_as(factory.user("admin"))

    mine = admin.get(f"/cooperatives/{history['coop_id']}/pins")
    theirs = admin.get(f"/cooperatives/{history['other_coop_id']}/pins")

    assert len(mine.get_json()["items"]) == 2
    assert [p["id"] for p in theirs.get_json()["items"]] == [history["foreign"]["id"]]
    missing = admin.get("/cooperatives/999999/pins")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_others_cannot_read_a_cooperatives_history(live, history, factory, login_as, api):
    path = f"/cooperatives/{history['coop_id']}/pins"
    other_member = factory.user("coop", cooperative_id=history["other_coop_id"])

    assert api.get(path).status_code == 401
    for who in (other_member, factory.user("buyer"), factory.user("host")):
        response = login_as(who).get(path)
        assert response.status_code == 403, who
        assert set(response.get_json()["error"]) == {"code", "message", "fields"}
    assert live.host_api.get(path).status_code == 403  # even the host who pinned them


def test_the_history_is_in_the_openapi_document(api):
    spec = api.get("/openapi.json").get_json()

    operation = spec["paths"]["/api/v1/cooperatives/{cooperative_id}/pins"]["get"]
    assert "200" in operation["responses"]
    schemas = spec["components"]["schemas"]
    assert {"prices", "session_title", "host_name"} <= set(schemas["PinHistory"]["properties"])
    assert "live_price_floor_percent" in schemas["Cooperative"]["properties"]


def test_the_dashboard_shows_the_latest_pins(history, app):
    # when the member opens /coop
    page = Browser(app.test_client()).login(history["member"])
    html = page.get("/coop").get_data(as_text=True)

    # then the pins section lists the product, session, host and the prices as money
    section = html[html.index('id="pins"') :]
    assert "尉犁羊肉专场" in section and "王副县长" in section
    assert "¥68.00" in section and "¥88.00" in section and "¥990.00" in section
    assert len(re.findall(r'class="pin-row"', section)) == 2
    assert 'href="/coop/pins"' in section


def test_the_pins_page_lists_every_pin_and_sets_the_floor(history, app):
    page = Browser(app.test_client()).login(history["member"])

    # given the history page
    html = page.get("/coop/pins").get_data(as_text=True)
    assert len(re.findall(r'class="pin-row"', html)) == 2
    assert 'name="live_price_floor_percent"' in html and 'value="50"' in html

    # when the member sets the floor out of range, then to 70
    bad = page.post("/coop/pins", {"live_price_floor_percent": "101"})
    good = page.post("/coop/pins", {"live_price_floor_percent": "70"})

    # then the bad value is shown, not saved; the good one is
    assert bad.status_code == 422 and 'data-field="live_price_floor_percent"' in bad.get_data(
        as_text=True
    )
    assert good.status_code == 302
    assert 'value="70"' in page.get("/coop/pins").get_data(as_text=True)


def test_the_pins_page_is_for_coop_members_and_admins(history, factory, app):
    assert Browser(app.test_client()).get("/coop/pins").status_code == 302  # to log in
    buyer = Browser(app.test_client()).login(factory.user("buyer"))
    assert buyer.get("/coop/pins").status_code == 403

    admin = Browser(app.test_client()).login(factory.user("admin"))
    everything = admin.get("/coop/pins").get_data(as_text=True)
    assert len(re.findall(r'class="pin-row"', everything)) == 3
    one = admin.get(f"/coop/pins?cooperative_id={history['other_coop_id']}")
    assert len(re.findall(r'class="pin-row"', one.get_data(as_text=True))) == 1
    assert admin.get("/coop/pins?cooperative_id=999999").status_code == 404
