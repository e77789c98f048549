"""Live sessions through the API: scheduling, start and end, pins, line-up, roles."""

from __future__ import annotations


def test_host_schedules_and_anyone_reads_the_session(scheduled, api):
    body = api.get(f"/live-sessions/{scheduled.session_id}").get_json()

    assert body["status"] == "scheduled" and body["host_id"] == scheduled.host.id
    assert body["stream_url"] == "https://example.com/a.m3u8" and body["stream_kind"] == "hls"
    assert body["pinned"] is None and body["viewers"] == 0
    listed = api.get("/live-sessions?status=scheduled").get_json()["items"]
    assert [s["id"] for s in listed] == [scheduled.session_id]
    assert api.get("/live-sessions?status=live").get_json()["items"] == []


def test_buyers_cannot_schedule_and_bad_fields_are_named(factory, login_as, api):
    buyer = login_as(factory.user("buyer"))
    assert buyer.post("/live-sessions", {"title": "x"}).status_code == 403
    assert api.post("/live-sessions", {"title": "x"}).status_code == 401

    host = login_as(factory.user("host"))
    response = host.post("/live-sessions", {"title": "", "stream_url": "javascript:alert(1)"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"title", "stream_url"}


def test_only_its_host_or_an_admin_starts_and_ends(scheduled, factory, login_as):
    other = login_as(factory.user("host"))
    path = f"/live-sessions/{scheduled.session_id}"

    refused = other.post(path + "/start")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_host"

    admin = login_as(factory.user("admin"))
    assert admin.post(path + "/start").get_json()["status"] == "live"
    assert scheduled.host_api.post(path + "/start").status_code == 409
    ended = scheduled.host_api.post(path + "/end")
    assert ended.status_code == 200 and ended.get_json()["status"] == "ended"
    assert scheduled.host_api.get(path).get_json()["status"] == "ended"


def test_pin_replaces_the_current_pin_and_end_unpins(live, factory):
    second = factory.product(variants=[{"name": "整只", "price": 120000, "stock": 3}])

    first = live.pin(live_price=6800, per_buyer_limit=2)
    assert first["variants"] == [
        {"id": live.variant_id, "name": "2 kg 后腿", "price": 8800, "live_price": 6800, "stock": 10}
    ]
    assert first["per_buyer_limit"] == 2 and first["product"]["id"] == live.product["id"]

    response = live.host_api.post(
        f"/live-sessions/{live.session_id}/pins", {"product_id": second["id"]}
    )
    assert response.status_code == 201
    pinned = live.host_api.get(f"/live-sessions/{live.session_id}").get_json()["pinned"]
    assert pinned["id"] == response.get_json()["id"]
    assert pinned["variants"][0]["live_price"] == 120000  # no live price given: the regular one

    live.host_api.post(f"/live-sessions/{live.session_id}/end")
    assert live.host_api.get(f"/live-sessions/{live.session_id}").get_json()["pinned"] is None


def test_pin_validates_live_prices_limit_and_state(scheduled, factory, login_as):
    path = f"/live-sessions/{scheduled.session_id}/pins"
    body = {"product_id": scheduled.product["id"]}

    not_live = scheduled.host_api.post(path, body)
    assert not_live.status_code == 409 and not_live.get_json()["error"]["code"] == "not_live"

    scheduled.host_api.post(f"/live-sessions/{scheduled.session_id}/start")
    foreign = factory.product()["variant_ids"][0]
    wrong_variant = scheduled.host_api.post(path, {**body, "live_prices": {str(foreign): 100}})
    assert wrong_variant.status_code == 422
    assert str(foreign) in wrong_variant.get_json()["error"]["fields"]["live_prices"]
    for bad in (
        {"live_prices": {str(scheduled.variant_id): -1}},
        {"live_prices": {str(scheduled.variant_id): 12.5}},
        {"per_buyer_limit": 0},
        {"product_id": 999999},
    ):
        assert scheduled.host_api.post(path, {**body, **bad}).status_code == 422, bad
    other = login_as(factory.user("host"))
    assert other.post(path, body).status_code == 403
    assert (
        scheduled.host_api.get(f"/live-sessions/{scheduled.session_id}").get_json()["pinned"]
        is None
    )


def test_unpin_is_for_the_host(live, factory, login_as):
    live.pin()
    path = f"/live-sessions/{live.session_id}/pins/current"

    assert login_as(factory.user("buyer")).delete(path).status_code == 403
    assert live.host_api.delete(path).status_code == 204
    assert live.host_api.get(f"/live-sessions/{live.session_id}").get_json()["pinned"] is None


def test_lineup_is_set_by_the_host_and_read_by_anyone(scheduled, factory, api):
    other = factory.product()
    path = f"/live-sessions/{scheduled.session_id}/lineup"

    response = scheduled.host_api.put(path, {"product_ids": [other["id"], scheduled.product["id"]]})
    assert response.status_code == 200
    assert [p["id"] for p in api.get(path).get_json()["items"]] == [
        other["id"],
        scheduled.product["id"],
    ]
    assert scheduled.host_api.put(path, {"product_ids": [424242]}).status_code == 422
    assert api.put(path, {"product_ids": []}).status_code == 401


def test_unknown_session_is_404_json(api):
    response = api.get("/live-sessions/9999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "live_session_not_found"
