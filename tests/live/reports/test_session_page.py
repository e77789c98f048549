"""/reports/live-sessions/<id>: printable, shareable, for its host or an admin."""

from __future__ import annotations


def test_host_reads_figures_chart_top_products_and_pins(world, login_as):
    response = login_as(world.host1).client.get(f"/reports/live-sessions/{world.s1}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "羊肉专场 Mutton night" in html
    for text in ("¥172.00", "¥12.00", "¥160.00", "50.0%"):  # gross, refunds, net, conversion
        assert text in html
    assert 'data-figure="unique_viewers">4<' in html and 'data-figure="peak_viewers">5<' in html
    assert 'id="session-chart"' in html and "/static/vendor/chart.umd.min.js" in html
    assert f'data-pin-id="{world.pin1}"' in html and f'data-pin-id="{world.pin2}"' in html
    assert f"/reports/live-sessions/{world.s1}" in html  # the stable link to share
    assert "@media print" in login_as(world.host1).client.get(
        "/reports-static/reports/reports.css"
    ).get_data(as_text=True)


def test_others_refused(world, login_as, client):
    path = f"/reports/live-sessions/{world.s1}"
    assert login_as(world.admin).client.get(path).status_code == 200
    assert login_as(world.host2).client.get(path).status_code == 403
    assert login_as(world.coop_a).client.get(path).status_code == 403
    assert login_as(world.admin).client.get("/reports/live-sessions/999999").status_code == 404
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_report_works_while_the_session_is_live(app, world, login_as):
    from live.models import LiveSession
    from shop.extensions import db

    with app.app_context():
        db.session.get(LiveSession, world.s2).status = "live"
        db.session.commit()
    host2 = login_as(world.host2)
    assert host2.get(f"/reports/live-sessions/{world.s2}").get_json()["gross"] == 8800
    html = host2.client.get(f"/reports/live-sessions/{world.s2}").get_data(as_text=True)
    assert "正在直播：以下为目前的数据" in html and "¥88.00" in html
