"""In Chromium on a real server: the reports draw their Chart.js charts and the CSV downloads."""

from __future__ import annotations

import pytest


def _login(page, url: str, user) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("form.card button.primary")
    page.wait_for_load_state("load")


@pytest.mark.browser
@pytest.mark.only_db("sqlite")
def test_charts_draw_and_csv_downloads(world, start_server, browser):
    server = start_server()
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        _login(page, server.url, world.host1)
        page.goto(f"{server.url}/reports/live-sessions/{world.s1}")
        page.wait_for_function("window.farmliveReportChart !== undefined")
        chart = page.evaluate(
            """() => { const c = window.farmliveReportChart;
                return {axes: Object.keys(c.options.scales).sort(),
                        types: c.data.datasets.map(d => d.type),
                        viewers: c.data.datasets[1].data, gross: c.data.datasets[0].data,
                        labels: c.data.labels}; }"""
        )
        assert chart["axes"] == ["viewers", "x", "y"]  # sales on the left, viewers on the right
        assert chart["types"] == ["bar", "line"]
        assert chart["viewers"] == [3, 1, 2]
        assert chart["gross"] == [160, 0, 12]  # yuan
        assert chart["labels"] == ["11-10 23:59", "11-11 00:00", "11-11 10:00"]  # Shanghai time

        page.goto(f"{server.url}/reports?group_by=day&from=2026-11-01&to=2026-11-30")
        page.wait_for_function("window.farmliveReportChart !== undefined")
        labels = page.evaluate("() => window.farmliveReportChart.data.labels")
        assert labels == ["2026-11-10", "2026-11-11", "2026-11-12"]
        with page.expect_download() as download_info:
            page.click("#csv-link")
        path = download_info.value.path()
        text = open(path, encoding="utf-8-sig").read()
        assert text.splitlines()[0] == "key,label,orders,units,gross,refunds,net,buyers"
        assert text.splitlines()[-1] == "total,Total,2,3,17200,1200,16000,2"
        # The same figures straight from the running server's API, with the page's cookie.
        api = page.request.get(f"{server.url}/api/v1/reports/sales?group_by=session")
        assert api.json()["rows"] == [
            {
                "key": world.s1,
                "label": "羊肉专场 Mutton night",
                "orders": 2,
                "units": 3,
                "gross": 17200,
                "refunds": 1200,
                "net": 16000,
                "buyers": 2,
            },
        ]
        assert errors == []
        assert all(url.startswith(server.url) for url in requested)  # nothing from a CDN
    finally:
        context.close()
