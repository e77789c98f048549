"""A coop member on a phone: a paid order arrives live, is packed and shipped."""

from __future__ import annotations

import pytest
import requests

ADDRESS = {
    "name": "王芳",
    "phone": "13800138000",
    "region": "新疆 库尔勒市",
    "detail": "人民路 8 号",
}
PHONE = {"width": 390, "height": 844}


def _buy_through_the_server(base: str, buyer, variant_id: int) -> dict:
    """A buyer checks out and pays (demo provider) over HTTP, as the shop's pages do."""
    http = requests.Session()
    token = http.get(f"{base}/api/v1/auth/csrf", timeout=10).json()["csrf_token"]
    headers = {"X-CSRFToken": token}
    login = {"email": buyer.email, "password": buyer.password}
    assert http.post(f"{base}/api/v1/auth/login", json=login, headers=headers, timeout=10).ok
    headers["X-CSRFToken"] = http.get(f"{base}/api/v1/auth/csrf", timeout=10).json()["csrf_token"]
    body = {"items": [{"variant_id": variant_id, "quantity": 2}], "address": ADDRESS}
    order = http.post(f"{base}/api/v1/orders", json=body, headers=headers, timeout=10).json()
    paid = http.post(
        f"{base}/api/v1/payments/demo/{order['id']}/confirm", headers=headers, timeout=10
    )
    assert paid.ok, paid.text
    return paid.json()


@pytest.mark.browser
def test_member_packs_and_ships_from_the_phone_dashboard(app, factory, start_server, browser):
    coop = factory.cooperative("尉犁羊肉合作社")
    product = factory.product(
        coop, name="羊肉", variants=[{"name": "2 kg leg", "price": 8800, "stock": 20}]
    )
    member = factory.user("coop", cooperative_id=coop)
    buyer = factory.user("buyer")
    server = start_server()

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/login?next=/coop")
        page.fill("input[name=email]", member.email)
        page.fill("input[name=password]", member.password)
        page.click("form.card button")
        page.wait_for_url(f"{server.url}/coop")
        page.wait_for_selector('#queue[data-connected="1"]', state="attached")

        order = _buy_through_the_server(server.url, buyer, product["variant_ids"][0])
        shipment_id = order["shipments"][0]["id"]
        card = f'.shipment[data-id="{shipment_id}"]'
        page.wait_for_selector(card)  # arrived over Socket.IO, no reload
        assert order["number"] in page.inner_text(card)
        assert "2 kg leg × 2" in page.inner_text(card)

        with page.expect_navigation():
            page.click(f"{card} .pack-form button")
        page.wait_for_selector(f'{card}[data-status="packed"]')
        page.fill(f"{card} .ship-form input[name=carrier]", "顺丰速运")
        page.fill(f"{card} .ship-form input[name=tracking_number]", "SF1234567890")
        with page.expect_navigation():
            page.click(f"{card} .ship-form button")
        page.wait_for_selector(card, state="detached")  # shipped: it left the to-do queue

        page.goto(f"{server.url}/coop?status=shipped")
        shipped = page.locator(f'{card}[data-status="shipped"]')
        assert shipped.count() == 1
        assert "SF1234567890" in shipped.inner_text()
    finally:
        context.close()


def _pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    import re

    boxes = re.findall(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    return [(round(float(w) * 25.4 / 72), round(float(h) * 25.4 / 72)) for w, h in boxes]


@pytest.mark.browser
@pytest.mark.only_db("sqlite")  # printing does not depend on the database
def test_packing_slips_print_one_per_page_on_a4_and_labels(app, factory, start_server, browser):
    from tests.orders.fulfilment.conftest import Scene

    scene = Scene(app, factory, lambda user: None)
    scene.paid_order([(scene.leg, 2)])
    scene.paid_order([(scene.lamb, 1)])
    server = start_server()
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{server.url}/login?next=/coop")
        page.fill("input[name=email]", scene.member_a.email)
        page.fill("input[name=password]", scene.member_a.password)
        page.click("form.card button")
        page.wait_for_url(f"{server.url}/coop")

        page.goto(f"{server.url}/coop/slips")
        a4 = _pdf_pages(page.pdf(prefer_css_page_size=True))
        page.goto(f"{server.url}/coop/slips?size=label")
        labels = _pdf_pages(page.pdf(prefer_css_page_size=True))
    finally:
        context.close()

    assert a4 == [(210, 297), (210, 297)]
    assert labels == [(100, 150), (100, 150)]
