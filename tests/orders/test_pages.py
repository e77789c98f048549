"""Order pages: checkout from the session cart, my orders, one order, pay, admin search."""

from __future__ import annotations

import re

import pytest

from orders.models import Order
from shop.extensions import db
from tests.orders.conftest import ADDRESS


def form_token(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture
def browser_client(shop, app):
    """A logged-in page client (the API client's cookie jar) with a cart of two legs."""
    client = shop.api.client
    with client.session_transaction() as session:
        session["cart"] = {str(shop.leg): 2}
    return client


def test_checkout_turns_the_cart_into_an_order_and_clears_it(browser_client, shop, app):
    page = browser_client.get("/checkout")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "¥176.00" in html and "不会产生真实扣款" in html  # Chinese by default

    response = browser_client.post("/checkout", data={**ADDRESS, "csrf_token": form_token(html)})

    assert response.status_code == 302
    order_id = int(re.search(r"/orders/(\d+)/pay", response.headers["Location"]).group(1))
    assert shop.stock(shop.leg) == 8
    with browser_client.session_transaction() as session:
        assert not session.get("cart")
    # the address is prefilled next time
    with browser_client.session_transaction() as session:
        session["cart"] = {str(shop.leg): 1}
    assert ADDRESS["detail"] in browser_client.get("/checkout").get_data(as_text=True)
    # the pay page says plainly that no money moves and offers the demo confirm
    pay = browser_client.get(f"/orders/{order_id}/pay").get_data(as_text=True)
    assert "演示支付：不会产生真实扣款。" in pay and 'id="demo-confirm"' in pay


def test_a_bad_address_is_shown_and_nothing_is_ordered(browser_client, shop):
    html = browser_client.get("/checkout").get_data(as_text=True)
    response = browser_client.post(
        "/checkout", data={**ADDRESS, "phone": "nope", "csrf_token": form_token(html)}
    )
    assert response.status_code == 422
    assert shop.stock(shop.leg) == 10
    with browser_client.session_transaction() as session:
        assert session["cart"] == {str(shop.leg): 2}


def test_order_pages_show_items_timeline_and_buttons(shop, app):
    order = shop.order([(shop.leg, 2)])
    client = shop.api.client
    listing = client.get("/orders").get_data(as_text=True)
    assert order["number"] in listing and "¥176.00" in listing

    detail = client.get(f"/orders/{order['id']}").get_data(as_text=True)
    assert 'id="pay-button"' in detail and 'id="cancel-button"' in detail
    assert "已下单，库存已为您保留" in detail

    shop.api.post(f"/payments/demo/{order['id']}/confirm")
    paid = client.get(f"/orders/{order['id']}").get_data(as_text=True)
    assert 'id="pay-button"' not in paid and "取消并退款" in paid
    assert 'data-status="paid"' in paid

    html = client.get(f"/orders/{order['id']}").get_data(as_text=True)
    cancelled = client.post(f"/orders/{order['id']}/cancel", data={"csrf_token": form_token(html)})
    assert cancelled.status_code == 302
    assert shop.status(order["id"]) == "refunded"
    assert "买家已取消并已退款" in client.get(f"/orders/{order['id']}").get_data(as_text=True)


def test_strangers_get_404_and_logged_out_users_are_sent_to_log_in(
    shop, factory, login_as, new_api
):
    order = shop.order()
    stranger = login_as(factory.user("buyer")).client
    assert stranger.get(f"/orders/{order['id']}").status_code == 404
    anonymous = new_api().client.get("/orders")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_admins_find_an_order_by_number_and_see_its_history(shop, factory, login_as, app):
    order = shop.order()
    admin = login_as(factory.user("admin")).client
    found = admin.get(f"/admin/orders?number={order['number'].lower()}")
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/orders/{order['id']}")
    page = admin.get(f"/orders/{order['id']}").get_data(as_text=True)
    assert shop.buyer.email in page and "placed" in page
    assert 'id="cancel-button"' in page
    assert shop.api.client.get("/admin/orders").status_code == 403


def test_the_stripe_pay_page_loads_stripe_js(shop, app):
    app.config.update(PAYMENT_PROVIDER="stripe", STRIPE_PUBLISHABLE_KEY="pk_test_page")
    order = shop.order()
    html = shop.api.client.get(f"/orders/{order['id']}/pay").get_data(as_text=True)
    assert "https://js.stripe.com/v3/" in html and "pk_test_page" in html
    script = shop.api.client.get("/orders-static/orders/pay.js").get_data(as_text=True)
    assert "/orders-static/orders/pay.js" in html and '"provider": "stripe"' in html
    assert "confirmPayment" in script and "return_url" in script
    assert "不会产生真实扣款" not in html
    with app.app_context():
        assert db.session.get(Order, order["id"]).status == "pending_payment"
