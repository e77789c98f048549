"""Through a real `python wsgi.py` process: buy from the cart, pay with demo; expiry runs inside."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.orders.conftest import ADDRESS


def token(session: requests.Session, base: str) -> str:
    return session.get(base + "/api/v1/auth/csrf").json()["csrf_token"]


def register(base: str) -> requests.Session:
    session = requests.Session()
    response = session.post(
        base + "/api/v1/auth/register",
        json={"email": "server-buyer@example.com", "password": "password123", "name": "买家"},
        headers={"X-CSRFToken": token(session, base)},
    )
    assert response.status_code == 201, response.text
    return session


def test_buy_from_the_cart_and_pay_with_demo(start_server, factory, shop):
    server = start_server(PAYMENT_PROVIDER="demo", RUN_BACKGROUND_TASKS="0")
    base = server.url
    buyer = register(base)
    csrf = token(buyer, base)

    added = buyer.post(
        base + "/cart/add", data={"variant_id": shop.leg, "quantity": 3, "csrf_token": csrf}
    )
    assert added.status_code == 200  # redirected to the cart
    checkout = buyer.get(base + "/checkout")
    assert "¥264.00" in checkout.text and "不会产生真实扣款" in checkout.text

    placed = buyer.post(
        base + "/checkout", data={**ADDRESS, "csrf_token": csrf}, allow_redirects=False
    )
    assert placed.status_code == 302, placed.text[:500]
    order_id = int(re.search(r"/orders/(\d+)/pay", placed.headers["Location"]).group(1))
    assert "不会产生真实扣款" in buyer.get(base + placed.headers["Location"]).text

    paid = buyer.post(
        base + f"/api/v1/payments/demo/{order_id}/confirm", json={}, headers={"X-CSRFToken": csrf}
    )
    assert paid.status_code == 200, paid.text
    order = buyer.get(base + f"/api/v1/orders/{order_id}").json()
    assert order["status"] == "paid" and order["total"] == 26400 and len(order["shipments"]) == 1
    assert shop.stock(shop.leg) == 7


def test_the_server_releases_expired_holds_by_itself(start_server, shop):
    server = start_server(
        RUN_BACKGROUND_TASKS="1", EXPIRY_INTERVAL_SECONDS="0.2", RESERVATION_MINUTES="0.005"
    )
    buyer = register(server.url)
    csrf = token(buyer, server.url)
    created = buyer.post(
        server.url + "/api/v1/orders",
        json={"items": [{"variant_id": shop.lamb, "quantity": 2}], "address": ADDRESS},
        headers={"X-CSRFToken": csrf},
    )
    assert created.status_code == 201, created.text
    assert shop.stock(shop.lamb) == 0
    order_url = server.url + f"/api/v1/orders/{created.json()['id']}"
    deadline = time.monotonic() + 20
    while (
        buyer.get(order_url).json()["status"] == "pending_payment" and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert buyer.get(order_url).json()["status"] == "cancelled"
    assert shop.stock(shop.lamb) == 2


@pytest.mark.browser
def test_a_buyer_checks_out_and_pays_with_demo_in_the_browser(start_server, shop, browser):
    server = start_server(PAYMENT_PROVIDER="demo", RUN_BACKGROUND_TASKS="0")
    context = browser.new_context()
    page = context.new_page()
    try:
        csrf = page.request.get(server.url + "/api/v1/auth/csrf").json()["csrf_token"]
        logged_in = page.request.post(
            server.url + "/api/v1/auth/login",
            data={"email": shop.buyer.email, "password": shop.buyer.password},
            headers={"X-CSRFToken": csrf},
        )
        assert logged_in.ok, logged_in.text()
        csrf = page.request.get(server.url + "/api/v1/auth/csrf").json()["csrf_token"]
        added = page.request.post(
            server.url + "/cart/add",
            form={"variant_id": str(shop.leg), "quantity": "2", "csrf_token": csrf},
        )
        assert added.ok

        page.goto(server.url + "/checkout")
        assert "no money moves" in page.content()
        for field, value in ADDRESS.items():
            page.fill(f"#checkout-form input[name={field}]", value)
        page.click("#checkout-form button[type=submit]")
        page.wait_for_url("**/pay")
        assert "Demo payment: no money moves." in page.content()
        page.click("#demo-confirm")
        page.wait_for_url(re.compile(r".*/orders/\d+$"))
        assert page.locator("#order-status").get_attribute("data-status") == "paid"
        assert shop.stock(shop.leg) == 8
    finally:
        context.close()
