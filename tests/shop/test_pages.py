"""Storefront, auth and cart pages as a shopper sees them."""

from __future__ import annotations

import pytest
from jinja2 import ChoiceLoader, DictLoader


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def catalogue(factory):
    mutton = factory.cooperative("尉犁羊肉合作社", region="新疆 尉犁县")
    veg = factory.cooperative("华家岭蔬菜合作社", region="甘肃 华家岭镇")
    leg = factory.product(
        mutton,
        name="羊后腿",
        variants=[
            {"name": "2 kg leg", "price": 8800, "stock": 3},
            {"name": "whole lamb", "price": 168000, "stock": 0},
        ],
    )
    potato = factory.product(
        veg, name="马铃薯", variants=[{"name": "5 kg", "price": 2990, "stock": 50}]
    )
    return {"mutton": mutton, "veg": veg, "leg": leg, "potato": potato}


def test_storefront_pages_render_for_each_role(catalogue, factory, browser_as):
    for role in (None, "buyer", "host", "coop", "admin"):
        page = browser_as(factory.user(role) if role else None)

        home = page.get("/")
        product = page.get(f"/products/{catalogue['leg']['id']}")
        cooperative = page.get(f"/cooperatives/{catalogue['veg']}")
        cart = page.get("/cart")

        assert (
            home.status_code == 200 and "羊后腿" in text(home) and "华家岭蔬菜合作社" in text(home)
        )
        assert (
            product.status_code == 200
            and "¥88.00" in text(product)
            and "¥1,680.00" in text(product)
        )
        assert cooperative.status_code == 200 and "马铃薯" in text(cooperative)
        assert "羊后腿" not in text(cooperative)
        assert cart.status_code == 200


def test_chinese_by_default_and_english_on_request(client):
    assert 'lang="zh-CN"' in text(client.get("/"))

    switched = client.get("/language/en?next=/cart")

    assert switched.status_code == 302 and switched.headers["Location"] == "/cart"
    assert 'lang="en"' in text(client.get("/"))


def test_storefront_sections_from_other_packages_render_in_order(app, client, catalogue):
    app.jinja_env.loader = ChoiceLoader(
        [
            DictLoader(
                {"t/one.html": "<p id=one>{{ title }}</p>", "t/two.html": "<p id=two>2</p>"}
            ),
            app.jinja_env.loader,
        ]
    )
    sections = app.extensions["farmlive.storefront_sections"]
    sections.append(lambda: ("t/one.html", {"title": "<b>live now</b>"}))
    sections.append(lambda: None)  # a section with nothing to show
    sections.append(lambda: ("t/two.html", {}))

    html = text(client.get("/"))

    assert html.index("<p id=one>") < html.index("<p id=two>") < html.index('id="products"')
    assert "&lt;b&gt;live now&lt;/b&gt;" in html


def test_search_finds_products(client, catalogue):
    found = text(client.get("/?q=后腿"))
    redirected = client.get("/search?q=马铃薯")

    assert "羊后腿" in found and "马铃薯" not in found
    assert redirected.status_code == 302 and "/?q=" in redirected.headers["Location"]
    assert "马铃薯" in text(client.get(redirected.headers["Location"]))


def test_user_text_is_escaped(client, factory):
    factory.product(name="<script>alert(1)</script>")

    html = text(client.get("/"))

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_missing_and_hidden_products_are_404_pages(browser_as, factory, catalogue):
    admin = browser_as(factory.user("admin"))
    assert (
        admin.post(f"/coop/products/{catalogue['potato']['id']}", {"name": "马铃薯"}).status_code
        == 302
    )

    missing = browser_as().get("/products/424242")
    hidden = browser_as().get(f"/products/{catalogue['potato']['id']}")

    assert missing.status_code == 404 and "<html" in text(missing)
    assert hidden.status_code == 404
    assert admin.get(f"/products/{catalogue['potato']['id']}").status_code == 200


def test_login_page_logs_in_and_follows_safe_next(browser_as, factory):
    user = factory.user("buyer")
    page = browser_as()

    response = page.post(
        "/login", {"email": user.email, "password": user.password, "next": "/cart"}
    )

    assert response.status_code == 302 and response.headers["Location"] == "/cart"
    assert page.client.get("/api/v1/auth/me").get_json()["email"] == user.email


def test_login_never_redirects_off_site(browser_as, factory):
    user = factory.user("buyer")
    for target in (
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        form = {"email": user.email, "password": user.password, "next": target}

        response = browser_as().post("/login", form)

        assert response.headers["Location"] == "/", target


def test_wrong_password_on_login_page(browser_as, factory):
    user = factory.user("buyer")

    response = browser_as().post("/login", {"email": user.email, "password": "nope"})

    assert response.status_code == 401 and 'class="error"' in text(response)


def test_register_page_creates_buyer_or_names_bad_fields(browser_as, client):
    page = browser_as()

    bad = page.post("/register", {"email": "nope", "password": "short", "name": ""})
    good = page.post(
        "/register", {"email": "new@example.com", "password": "long-enough", "name": "李"}
    )

    assert bad.status_code == 422
    for field in ("email", "password", "name"):
        assert f'data-field="{field}"' in text(bad)
    assert good.status_code == 302
    assert page.client.get("/api/v1/auth/me").get_json()["role"] == "buyer"


def test_forms_without_csrf_are_refused(client, factory, browser_as):
    user = factory.user("buyer")

    response = client.post("/login", data={"email": user.email, "password": user.password})

    assert response.status_code == 400
    admin = browser_as(factory.user("admin")).client
    for path in (
        "/register",
        "/logout",
        "/cart/add",
        "/cart/update",
        "/cart/remove",
        "/coop/products/new",
        "/admin/users",
        "/admin/cooperatives",
    ):
        assert admin.post(path, data={"variant_id": "1", "name": "x"}).status_code == 400, path


def test_logout_page(browser_as, factory):
    page = browser_as(factory.user("buyer"))

    assert page.post("/logout").status_code == 302
    assert page.client.get("/api/v1/auth/me").status_code == 401


def test_page_login_is_rate_limited(database_url, tmp_path):
    from tests.conftest import make_app
    from tests.shop.conftest import Browser

    app = make_app(database_url, tmp_path, LOGIN_RATE_LIMIT_PER_ACCOUNT="2 per minute")
    page = Browser(app.test_client())
    body = {"email": "x@example.com", "password": "wrong"}

    statuses = [page.post("/login", body).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]
    assert page.get("/login").status_code == 200  # viewing the form is not limited
