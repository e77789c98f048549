"""A host pins in one browser, a phone-sized viewer sees it, buys inside the live page with the
demo provider, and the host console shows the sale."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}


def _login(context, base: str, user) -> None:
    """Log a browser context in through the API, as the pages' own scripts do."""
    token = context.request.get(base + "/api/v1/auth/csrf").json()["csrf_token"]
    response = context.request.post(
        base + "/api/v1/auth/login",
        data={"email": user.email, "password": user.password},
        headers={"X-CSRFToken": token},
    )
    assert response.ok, response.text()


def test_host_pins_viewer_buys_on_the_live_page_host_sees_the_sale(
    browser, start_server, factory, login_as
):
    from playwright.sync_api import expect

    host = factory.user("host", name="王副县长")
    buyer = factory.user("buyer", name="张女士")
    product = factory.product(variants=[{"name": "5 kg 后腿", "price": 22900, "stock": 20}])
    host_api = login_as(host)
    session_id = host_api.post("/live-sessions", {"title": "罗布羊专场"}).get_json()["id"]
    host_api.put(f"/live-sessions/{session_id}/lineup", {"product_ids": [product["id"]]})
    name = host_api.get(f"/products/{product['id']}").get_json()["name"]
    server = start_server()

    host_context = browser.new_context()
    viewer_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        _login(host_context, server.url, host)
        console = host_context.new_page()
        console.goto(f"{server.url}/host/live/{session_id}")
        console.locator("#console[data-joined=true]").wait_for(timeout=10_000)
        console.click("#start-button")
        expect(console.locator("#status-badge")).to_have_attribute("data-status", "live")

        viewer = viewer_context.new_page()
        viewer.goto(f"{server.url}/live/{session_id}")
        viewer.locator("#live[data-joined=true]").wait_for(timeout=10_000)
        expect(viewer.locator("#pin-card")).to_be_hidden()
        second_tab = viewer_context.new_page()  # the same browser in another tab: one viewer
        second_tab.goto(f"{server.url}/live/{session_id}")
        second_tab.locator("#live[data-joined=true]").wait_for(timeout=10_000)
        expect(second_tab.locator("#viewer-count")).to_have_text("1")
        expect(console.locator("#viewers-now")).to_have_text("1", timeout=5_000)
        second_tab.close()

        console.locator(".live-price-input").fill("199.00")
        console.locator(".limit-input").fill("3")
        with console.expect_response(lambda r: r.url.endswith("/pins")) as pinned:
            console.click(".pin-button")
        assert pinned.value.status == 201
        viewer.locator("#pin-card").wait_for(state="visible", timeout=1_000)
        expect(viewer.locator("#pin-live-price")).to_have_text("¥199.00")
        expect(viewer.locator("#pin-price")).to_have_text("¥229.00")

        viewer.click("#buy-button")  # logged out: the sheet asks to log in, on the same page
        viewer.fill("#login-form input[name=email]", buyer.email)
        viewer.fill("#login-form input[name=password]", buyer.password)
        viewer.click("#login-form button[type=submit]")
        viewer.locator("#buy-form").wait_for(state="visible", timeout=10_000)
        assert viewer.url.endswith(f"/live/{session_id}")
        viewer.fill("#quantity", "2")
        viewer.fill("#buy-form input[name=name]", "张伟")
        viewer.fill("#buy-form input[name=phone]", "13800000000")
        viewer.fill("#buy-form input[name=region]", "新疆 尉犁县")
        viewer.fill("#buy-form input[name=detail]", "团结路 1 号")
        expect(viewer.locator("#sheet-total")).to_have_text("¥398.00")
        expect(viewer.locator(".sheet .demo-banner")).to_be_visible()
        viewer.click("#pay-button")
        viewer.locator("#paid").wait_for(state="visible", timeout=15_000)
        expect(viewer.locator("#paid-number")).to_have_text(re.compile(r"^FL\w+$"))

        expect(console.locator("#sales-orders")).to_have_text("1", timeout=10_000)
        expect(console.locator("#sales-units")).to_have_text("2")
        expect(console.locator("#sales-gross")).to_have_text("¥398.00")
        expect(console.locator("#sales-products")).to_contain_text(name)
        expect(viewer.locator("#toasts")).to_contain_text("尉犁的张**")
        expect(viewer.locator("#pin-stock")).to_contain_text("18")

        viewer.click("#back-to-stream")
        hostile = '<img src=x onerror="document.title=1">'
        viewer.fill("#chat-body", hostile)
        viewer.click("#chat-form button[type=submit]")
        expect(viewer.locator("#messages .msg .body")).to_have_text(hostile, timeout=10_000)
        assert viewer.locator("#messages img").count() == 0
        expect(console.locator("#chat .msg .body")).to_have_text(hostile, timeout=10_000)

        # watching, logging in and buying was one viewer, who bought: conversion 100 %
        report = host_api.get(f"/reports/live-sessions/{session_id}").get_json()
        assert (report["unique_viewers"], report["peak_viewers"]) == (1, 1)
        assert (report["buyers"], report["conversion"]) == (1, 1.0)
    finally:
        host_context.close()
        viewer_context.close()
