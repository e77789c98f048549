"""A cooperative's live price floor: read with the cooperative, set by its members or an admin."""

from __future__ import annotations

import pytest

from tests.shop.conftest import Browser


def test_a_cooperative_starts_with_a_floor_of_50(api, factory):
    coop_id = factory.cooperative()

    body = api.get(f"/cooperatives/{coop_id}").get_json()

    assert body["live_price_floor_percent"] == 50
    assert api.get("/cooperatives").get_json()["items"][0]["live_price_floor_percent"] == 50


def test_an_admin_may_create_a_cooperative_with_its_floor(factory, login_as):
    admin = login_as(factory.user("admin"))

    response = admin.post(
        "/cooperatives", {"name": "华家岭", "region": "甘肃", "live_price_floor_percent": 30}
    )

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["live_price_floor_percent"] == 30


def test_the_cooperatives_own_member_sets_its_floor(factory, login_as, api):
    # given a cooperative and its member
    coop_id = factory.cooperative()
    member = login_as(factory.user("coop", cooperative_id=coop_id))

    # when the member sets the floor to 65 %
    response = member.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": 65})

    # then everyone reads the new floor
    assert response.status_code == 200, response.get_json()
    assert api.get(f"/cooperatives/{coop_id}").get_json()["live_price_floor_percent"] == 65


def test_only_its_members_and_admins_set_the_floor(factory, login_as, api):
    # given a cooperative, a member of another one, a host and a buyer
    coop_id = factory.cooperative()
    body = {"live_price_floor_percent": 10}
    others = [factory.user("coop"), factory.user("host"), factory.user("buyer")]

    # when each of them tries to change the floor, then each is refused and nothing changes
    assert api.patch(f"/cooperatives/{coop_id}", body).status_code == 401
    for user in others:
        response = login_as(user).patch(f"/cooperatives/{coop_id}", body)
        assert response.status_code == 403, (user, response.get_json())
        assert response.get_json()["error"]["code"] == "forbidden"
    assert api.get(f"/cooperatives/{coop_id}").get_json()["live_price_floor_percent"] == 50


def test_a_member_changes_nothing_else_about_the_cooperative(factory, login_as, api):
    coop_id = factory.cooperative("旧名")
    member = login_as(factory.user("coop", cooperative_id=coop_id))

    response = member.patch(
        f"/cooperatives/{coop_id}", {"name": "新名", "live_price_floor_percent": 60}
    )

    assert response.status_code == 403
    after = api.get(f"/cooperatives/{coop_id}").get_json()
    assert after["name"] == "旧名" and after["live_price_floor_percent"] == 50


@pytest.mark.parametrize("value", [-1, 101, 1000, "50", 50.5, None, True])
def test_a_floor_outside_0_to_100_is_422_naming_the_field(factory, login_as, api, value):
    coop_id = factory.cooperative()
    admin = login_as(factory.user("admin"))

    response = admin.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": value})

    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == ["live_price_floor_percent"]
    assert api.get(f"/cooperatives/{coop_id}").get_json()["live_price_floor_percent"] == 50


@pytest.mark.parametrize("value", [0, 100])
def test_the_floor_may_be_0_or_100(factory, login_as, value):
    coop_id = factory.cooperative()
    admin = login_as(factory.user("admin"))

    response = admin.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": value})

    assert response.status_code == 200 and response.get_json()["live_price_floor_percent"] == value


def test_the_admin_cooperative_page_edits_the_floor(factory, app, api):
    coop_id = factory.cooperative("华家岭合作社", region="甘肃")
    page = Browser(app.test_client()).login(factory.user("admin"))
    form = {"name": "华家岭合作社", "region": "甘肃", "description": ""}

    shown = page.get(f"/admin/cooperatives/{coop_id}").get_data(as_text=True)
    bad = page.post(f"/admin/cooperatives/{coop_id}", {**form, "live_price_floor_percent": "120"})
    good = page.post(f"/admin/cooperatives/{coop_id}", {**form, "live_price_floor_percent": "75"})

    assert 'name="live_price_floor_percent"' in shown and 'value="50"' in shown
    assert bad.status_code == 422
    assert 'data-field="live_price_floor_percent"' in bad.get_data(as_text=True)
    assert good.status_code == 302
    assert api.get(f"/cooperatives/{coop_id}").get_json()["live_price_floor_percent"] == 75
