"""The session cart: add, change, remove, capped by stock, priced by the server."""

from __future__ import annotations

import re

import pytest


@pytest.fixture
def stock(factory):
    product = factory.product(
        name="羊排",
        variants=[
            {"name": "ribs 1 kg", "price": 9800, "stock": 3},
            {"name": "2 kg", "price": 18800, "stock": 10},
        ],
    )
    return product["variant_ids"]


def cart_session(page) -> dict:
    with page.client.session_transaction() as session:
        return dict(session.get("cart", {}))


def test_add_keeps_exact_session_format_and_shows_totals(browser_as, stock):
    page = browser_as()
    ribs, two_kg = stock

    page.post("/cart/add", {"variant_id": ribs, "quantity": 2})
    page.post("/cart/add", {"variant_id": two_kg})
    html = page.get("/cart").get_data(as_text=True)

    assert cart_session(page) == {str(ribs): 2, str(two_kg): 1}
    assert "¥196.00" in html and "¥188.00" in html
    assert re.search(r'id="cart-total">¥384.00<', html)


def test_quantity_is_capped_by_stock(browser_as, stock):
    page = browser_as()
    ribs = stock[0]

    page.post("/cart/add", {"variant_id": ribs, "quantity": 2})
    page.post("/cart/add", {"variant_id": ribs, "quantity": 5})
    after_add = cart_session(page)
    page.post("/cart/update", {"variant_id": ribs, "quantity": 50})

    assert after_add == {str(ribs): 3}
    assert cart_session(page) == {str(ribs): 3}


def test_update_and_remove(browser_as, stock):
    page = browser_as()
    ribs, two_kg = stock
    page.post("/cart/add", {"variant_id": ribs, "quantity": 2})
    page.post("/cart/add", {"variant_id": two_kg, "quantity": 2})

    page.post("/cart/update", {"variant_id": ribs, "quantity": 1})
    page.post("/cart/update", {"variant_id": two_kg, "quantity": 0})
    assert cart_session(page) == {str(ribs): 1}

    page.post("/cart/remove", {"variant_id": ribs})
    assert cart_session(page) == {}
    assert "¥" not in page.get("/cart").get_data(as_text=True).split("<main>")[1]


def test_cart_shows_current_server_price(browser_as, login_as, factory, stock):
    page = browser_as()
    page.post("/cart/add", {"variant_id": stock[0], "quantity": 2})
    admin = login_as(factory.user("admin"))

    admin.patch(f"/variants/{stock[0]}", {"price": 10000})

    assert "¥200.00" in page.get("/cart").get_data(as_text=True)


def test_bad_cart_input_is_a_clear_4xx(browser_as):
    page = browser_as()
    for form in ({"variant_id": "abc"}, {"variant_id": "1", "quantity": "lots"}, {}):
        assert page.post("/cart/add", form).status_code == 422, form


def test_unknown_or_sold_out_variant_is_not_added(browser_as, login_as, factory, stock):
    page = browser_as()
    login_as(factory.user("admin")).patch(f"/variants/{stock[0]}", {"stock": 0})

    page.post("/cart/add", {"variant_id": 999999})
    page.post("/cart/add", {"variant_id": stock[0]})

    assert cart_session(page) == {}


def test_add_to_cart_from_product_page(browser_as, factory, stock):
    page = browser_as(factory.user("buyer"))

    response = page.post("/cart/add", {"variant_id": stock[1], "quantity": 2})

    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    assert "羊排" in page.get("/cart").get_data(as_text=True)
