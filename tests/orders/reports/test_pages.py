"""/reports: each role sees its own tables, totals, a chart and a CSV link; others are refused."""

from __future__ import annotations

import re

RANGE = "from=2026-11-01&to=2026-11-30"


def page(client, path: str):
    response = client.client.get(path)
    return response, response.get_data(as_text=True)


def test_admin_sees_every_grouping_with_totals_chart_and_csv(world, login_as):
    admin = login_as(world.admin)
    response, html = page(admin, f"/reports?group_by=product&{RANGE}")
    assert response.status_code == 200
    for tab in ("按天", "按商品", "按合作社", "按直播场次"):  # Chinese by default
        assert tab in html
    assert "罗布羊肉" in html and "Carrots" in html
    assert "¥393.00" in html  # gross 39300 fen
    assert "¥381.00" in html  # net 38100 fen
    csv_link = re.search(r'id="csv-link" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert csv_link.startswith("/api/v1/reports/sales?") and "format=csv" in csv_link
    assert "group_by=product" in csv_link and "from=2026-11-01" in csv_link
    csv = admin.client.get(csv_link)
    assert csv.status_code == 200 and csv.get_data().startswith(b"\xef\xbb\xbf")
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "/static/vendor/chart.umd.min.js" in scripts
    assert all(src.startswith("/") for src in scripts)  # never a CDN
    assert 'id="sales-chart"' in html


def test_session_rows_link_to_the_session_report(world, login_as):
    _, html = page(login_as(world.host1), f"/reports?group_by=session&{RANGE}")
    assert f'href="/reports/live-sessions/{world.s1}"' in html
    assert "Second stream" not in html  # host2's session


def test_cooperative_page_shows_only_its_items(world, login_as):
    response, html = page(login_as(world.coop_b), f"/reports?group_by=product&{RANGE}")
    assert response.status_code == 200
    assert "按合作社" not in html
    assert "Carrots" in html and "罗布羊肉" not in html
    assert "¥57.00" in html and "¥45.00" in html  # gross 5700, net 4500


def test_buyer_refused_and_logged_out_sent_to_login(world, login_as, client):
    assert page(login_as(world.buyer), "/reports")[0].status_code == 403
    response = client.get("/reports")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_bad_range_shows_the_form_with_the_field(world, login_as):
    response, html = page(login_as(world.admin), "/reports?from=2026-11-30&to=2026-11-01")
    assert response.status_code == 422
    assert 'data-field="to"' in html
