"""GET /api/v1/reports/live-sessions/<id>: figures of session S1 worked out by hand.

S1 sold O1 (b1: 2 x mutton @ 8000 under pin1, 15:59:59Z) and O3 (b2: 1 x carrots @ 1200 under
pin2, 02:00Z next day, refunded later); O5 expired unpaid. 4 distinct viewers, peak 5.
"""

from __future__ import annotations


def test_session_report_figures_with_viewers(world, login_as):
    body = login_as(world.host1).get(f"/reports/live-sessions/{world.s1}").get_json()
    assert {k: body[k] for k in ("orders", "units", "gross", "refunds", "net", "buyers")} == {
        "orders": 2,
        "units": 3,
        "gross": 16000 + 1200,
        "refunds": 1200,
        "net": 16000,
        "buyers": 2,
    }
    assert body["peak_viewers"] == 5
    assert body["unique_viewers"] == 4
    assert body["conversion"] == 0.5  # 2 buyers / 4 viewers
    assert body["per_minute"] == [
        {"minute": "2026-11-10T15:59:00Z", "orders": 1, "units": 2, "gross": 16000, "viewers": 3},
        {"minute": "2026-11-10T16:00:00Z", "orders": 0, "units": 0, "gross": 0, "viewers": 1},
        {"minute": "2026-11-11T02:00:00Z", "orders": 1, "units": 1, "gross": 1200, "viewers": 2},
    ]
    assert body["top_products"] == [
        {"product_id": world.p1, "name": "罗布羊肉", "units": 2, "gross": 16000},
        {"product_id": world.p2, "name": "Carrots", "units": 1, "gross": 1200},
    ]
    pins = [
        {k: p[k] for k in ("pin_id", "product_id", "orders", "units", "gross")}
        for p in body["pins"]
    ]
    assert pins == [
        {"pin_id": world.pin1, "product_id": world.p1, "orders": 1, "units": 2, "gross": 16000},
        {"pin_id": world.pin2, "product_id": world.p2, "orders": 1, "units": 1, "gross": 1200},
    ]
    assert body["session"]["title"] == "羊肉专场 Mutton night"


def test_session_without_viewers_has_zero_conversion(app, world, login_as):
    body = login_as(world.admin).get(f"/reports/live-sessions/{world.s2}").get_json()
    assert (body["orders"], body["gross"], body["unique_viewers"]) == (1, 8800, 1)
    assert body["conversion"] == 1.0

    from live.models import LiveSession
    from shop.extensions import db

    with app.app_context():
        empty = LiveSession(host_id=world.host1.id, title="Not yet", status="scheduled")
        db.session.add(empty)
        db.session.commit()
        empty_id = empty.id
    body = login_as(world.host1).get(f"/reports/live-sessions/{empty_id}").get_json()
    assert body["orders"] == body["unique_viewers"] == body["peak_viewers"] == 0
    assert body["conversion"] == 0
    assert body["per_minute"] == [] and body["top_products"] == [] and body["pins"] == []


def test_only_its_host_or_an_admin(world, login_as, new_api):
    path = f"/reports/live-sessions/{world.s1}"
    assert login_as(world.admin).get(path).status_code == 200
    assert login_as(world.host2).get(path).status_code == 403
    assert login_as(world.coop_a).get(path).status_code == 403
    assert login_as(world.buyer).get(path).status_code == 403
    assert new_api().get(path).status_code == 401
    missing = login_as(world.admin).get("/reports/live-sessions/999999")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "live_session_not_found"
