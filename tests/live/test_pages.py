"""The live page, the host console, scheduling, and live's sections on the storefront."""

from __future__ import annotations

import io

from PIL import Image


def test_anyone_watches_the_live_page(live, client):
    live.pin(live_price=6800)
    page = client.get(f"/live/{live.session_id}")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "尉犁羊肉专场" in html and "vendor/hls.min.js" in html and "live.js" in html
    assert 'id="pin-card"' in html and 'id="buy-button"' in html
    assert "Demo payments" in html or "演示" in html or "demo-banner" in html


def test_page_text_is_escaped(factory, login_as, client):
    host = login_as(factory.user("host"))
    title = '<script>alert("x")</script>'
    session_id = host.post("/live-sessions", {"title": title}).get_json()["id"]

    html = client.get(f"/live/{session_id}").get_data(as_text=True)
    assert title not in html and "&lt;script&gt;" in html


def test_after_the_stream_the_replay_lists_featured_products(live, client):
    live.pin()
    live.host_api.post(f"/live-sessions/{live.session_id}/end")

    html = client.get(f"/live/{live.session_id}").get_data(as_text=True)
    assert "https://example.com/a.m3u8" in html
    assert f'href="/products/{live.product["id"]}"' in html and "¥88.00" in html


def test_console_is_for_its_host_or_an_admin(scheduled, factory, login_as, client):
    path = f"/host/live/{scheduled.session_id}"

    assert client.get(path).status_code == 302  # logged out: to the login page
    assert login_as(factory.user("host")).client.get(path).status_code == 403
    assert login_as(factory.user("buyer")).client.get(path).status_code == 403
    page = scheduled.host_api.client.get(path)
    assert page.status_code == 200 and "host.js" in page.get_data(as_text=True)
    assert login_as(factory.user("admin")).client.get(path).status_code == 200


def test_host_schedules_with_a_cover_and_lists_sessions(host, login_as):
    browser = login_as(host).client
    cover = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(cover, "PNG")
    cover.seek(0)
    token = browser.get("/api/v1/auth/csrf").get_json()["csrf_token"]

    response = browser.post(
        "/host/live/new",
        data={
            "csrf_token": token,
            "title": "华家岭土豆",
            "description": "新土豆",
            "stream_url": "https://example.com/v.mp4",
            "scheduled_at": "2030-05-01T19:30",
            "cover": (cover, "cover.png"),
        },
        content_type="multipart/form-data",
    )

    assert response.status_code == 302
    session = browser.get("/api/v1/live-sessions").get_json()["items"][0]
    assert session["title"] == "华家岭土豆" and session["stream_kind"] == "video"
    assert session["scheduled_at"].startswith("2030-05-01T11:30")  # 19:30 in Asia/Shanghai
    assert browser.get(session["cover_url"]).status_code == 200
    assert "华家岭土豆" in browser.get("/host/live").get_data(as_text=True)


def test_scheduling_form_rejects_bad_input(host, login_as):
    browser = login_as(host).client
    token = browser.get("/api/v1/auth/csrf").get_json()["csrf_token"]
    response = browser.post(
        "/host/live/new",
        data={"csrf_token": token, "title": "", "stream_url": "ftp://x", "scheduled_at": "soon"},
    )
    assert response.status_code == 422
    assert browser.get("/api/v1/live-sessions").get_json()["items"] == []


def test_home_shows_live_now_and_coming_up(live, factory, login_as, client):
    other = login_as(factory.user("host"))
    other.post("/live-sessions", {"title": "下周的土豆直播"})

    html = client.get("/").get_data(as_text=True)
    assert "尉犁羊肉专场" in html and "下周的土豆直播" in html
    assert f"/live/{live.session_id}" in html


def test_seeder_schedules_one_demo_session_idempotently(app):
    from live.models import LiveSession
    from shop.demo import seed
    from shop.extensions import db

    with app.test_request_context():
        first = list(seed())
        second = list(seed())
        sessions = db.session.query(LiveSession).all()
        assert len(sessions) == 1 and sessions[0].status == "scheduled"
        assert sessions[0].stream_url and sessions[0].lineup
        assert all("羊" in item.product.name for item in sessions[0].lineup)
    assert any("live" in line for line in first) and any("already" in line for line in second)
