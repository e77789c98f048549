"""Catalogue pages of cooperative members and the admin pages."""

from __future__ import annotations

import io

import pytest

from shop.forms import parse_yuan
from tests.shop.conftest import image_bytes


def text(response) -> str:
    return response.get_data(as_text=True)


def product_json(api, product_id: int) -> dict:
    return api.get(f"/products/{product_id}").get_json()


@pytest.fixture
def member(coop_setup, browser_as):
    return browser_as(coop_setup["member"])


def test_catalogue_pages_need_coop_or_admin(browser_as, factory, coop_setup):
    product_id = coop_setup["product"]["id"]
    anonymous = browser_as().get("/coop/products")

    assert (
        anonymous.status_code == 302
        and "/login?next=/coop/products" in anonymous.headers["Location"]
    )
    for role in ("buyer", "host"):
        page = browser_as(factory.user(role))
        assert page.get("/coop/products").status_code == 403
        assert page.get(f"/coop/products/{product_id}").status_code == 403
    assert browser_as(factory.user("coop")).get(f"/coop/products/{product_id}").status_code == 403
    assert browser_as(factory.user("admin")).get(f"/coop/products/{product_id}").status_code == 200


def test_member_sees_only_own_products(member, factory, coop_setup):
    factory.product(factory.cooperative("别家"), name="别家的菜")

    html = text(member.get("/coop/products"))

    assert "别家的菜" not in html
    assert f"/coop/products/{coop_setup['product']['id']}" in html


def test_create_product_converts_yuan_to_fen_exactly(member, api, coop_setup):
    for typed, fen in [("88.00", 8800), ("88.5", 8850), ("0.07", 7), ("¥1680", 168000)]:
        response = member.post(
            "/coop/products/new",
            {"name": "羊排", "variant_name": "1 kg", "variant_price": typed, "variant_stock": "7"},
        )

        assert response.status_code == 302, typed
        product = product_json(api, int(response.headers["Location"].rsplit("/", 1)[1]))
        assert (product["variants"][0]["price"], product["variants"][0]["stock"]) == (fen, 7)
        assert product["cooperative_id"] == coop_setup["coop_id"]


def test_bad_price_is_shown_beside_the_field(member):
    for typed in ("abc", "88.001", "-5", "1e3", ""):
        response = member.post(
            "/coop/products/new",
            {"name": "", "variant_name": "1 kg", "variant_price": typed, "variant_stock": "x"},
        )

        assert response.status_code == 422, typed
        for field in ("name", "variant_price", "variant_stock"):
            assert f'data-field="{field}"' in text(response)


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("88", 8800),
        ("88.00", 8800),
        ("88.5", 8850),
        ("0.07", 7),
        ("19.99", 1999),
        ("￥ 1680.10", 168010),
    ],
)
def test_parse_yuan_is_exact(typed, fen):
    assert parse_yuan(typed) == fen


@pytest.mark.parametrize("typed", ["abc", "88.001", "-5", "1e3", "", "1,000", "12345678"])
def test_parse_yuan_refuses_non_prices(typed):
    with pytest.raises(ValueError):
        parse_yuan(typed)


def test_create_product_with_photo(member, api):
    response = member.post(
        "/coop/products/new",
        {
            "name": "整羊",
            "variant_name": "约 15 kg",
            "variant_price": "1680.00",
            "variant_stock": "2",
            "photo": (io.BytesIO(image_bytes("PNG")), "lamb.png"),
        },
        content_type="multipart/form-data",
    )

    product_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert product_json(api, product_id)["photo_url"].endswith(".jpg")


def test_edit_variant_price_stock_and_add_variant(member, api, coop_setup):
    product_id = coop_setup["product"]["id"]
    variant_id = coop_setup["product"]["variant_ids"][0]

    edited = member.post(
        f"/coop/products/{product_id}/variants/{variant_id}",
        {"name": "2 kg leg", "price": "99.90", "stock": "12"},
    )
    added = member.post(
        f"/coop/products/{product_id}/variants", {"name": "4 kg", "price": "170", "stock": "4"}
    )
    refused = member.post(
        f"/coop/products/{product_id}/variants", {"name": "4 kg", "price": "1", "stock": "1"}
    )

    assert edited.status_code == 302 and added.status_code == 302
    assert refused.status_code == 422 and 'data-field="name"' in text(refused)
    variants = product_json(api, product_id)["variants"]
    assert [(v["name"], v["price"], v["stock"]) for v in variants] == [
        ("2 kg leg", 9990, 12),
        ("4 kg", 17000, 4),
    ]
    assert "99.90" in text(member.get(f"/coop/products/{product_id}"))


def test_hide_and_rename_product(member, api, coop_setup):
    product_id = coop_setup["product"]["id"]

    response = member.post(
        f"/coop/products/{product_id}", {"name": "改名", "description": "新描述"}
    )

    assert response.status_code == 302
    assert api.get(f"/products/{product_id}").status_code == 404  # unticked "on sale" hides it
    member.post(f"/coop/products/{product_id}", {"name": "改名", "description": "", "active": "on"})
    assert product_json(api, product_id)["name"] == "改名"


def test_photo_page_upload_and_refusal(member, coop_setup, api):
    product_id = coop_setup["product"]["id"]

    good = member.post(
        f"/coop/products/{product_id}/photo",
        {"photo": (io.BytesIO(image_bytes("WEBP")), "x.webp")},
        content_type="multipart/form-data",
    )
    bad = member.post(
        f"/coop/products/{product_id}/photo",
        {"photo": (io.BytesIO(b"%PDF-1.4 not an image"), "x.jpg")},
        content_type="multipart/form-data",
    )

    assert good.status_code == 302 and product_json(api, product_id)["photo_url"]
    assert bad.status_code == 422 and 'data-field="photo"' in text(bad)


def test_member_cannot_post_to_another_cooperatives_product(browser_as, factory, coop_setup):
    other = browser_as(factory.user("coop"))
    product_id = coop_setup["product"]["id"]
    variant_id = coop_setup["product"]["variant_ids"][0]

    response = other.post(
        f"/coop/products/{product_id}/variants/{variant_id}",
        {"name": "x", "price": "1", "stock": "1"},
    )

    assert response.status_code == 403


def test_admin_pages_render_only_for_admin(browser_as, factory):
    admin = browser_as(factory.user("admin"))
    for path in ("/admin/users", "/admin/cooperatives", "/coop/products", "/coop/products/new"):
        assert admin.get(path).status_code == 200, path
    for role in ("buyer", "host", "coop"):
        page = browser_as(factory.user(role))
        assert page.get("/admin/users").status_code == 403
        assert page.post("/admin/cooperatives", {"name": "x", "region": "y"}).status_code == 403
    assert browser_as().get("/admin/users").status_code == 302


def test_admin_creates_and_deactivates_a_user(browser_as, factory, new_api):
    admin = browser_as(factory.user("admin"))
    coop_id = factory.cooperative("尉犁羊肉合作社")

    created = admin.post(
        "/admin/users",
        {
            "name": "社员",
            "email": "m@example.com",
            "password": "long-enough",
            "role": "coop",
            "cooperative_id": str(coop_id),
        },
    )
    invalid = admin.post(
        "/admin/users", {"name": "", "email": "bad", "password": "1", "role": "king"}
    )
    listing = text(admin.get("/admin/users"))

    assert created.status_code == 302 and "m@example.com" in listing
    assert invalid.status_code == 422
    for field in ("name", "email", "password", "role"):
        assert f'data-field="{field}"' in text(invalid)
    member = new_api()
    member.login("m@example.com", "long-enough")
    user_id = member.get("/auth/me").get_json()["id"]
    assert member.get("/auth/me").get_json()["cooperative_id"] == coop_id

    assert admin.post(f"/admin/users/{user_id}/active", {"active": "0"}).status_code == 302

    assert member.get("/auth/me").status_code == 401


def test_admin_creates_and_edits_cooperative(browser_as, factory, api):
    admin = browser_as(factory.user("admin"))

    created = admin.post(
        "/admin/cooperatives", {"name": "华家岭蔬菜合作社", "region": "甘肃 华家岭镇"}
    )
    duplicate = admin.post("/admin/cooperatives", {"name": "华家岭蔬菜合作社", "region": "甘肃"})
    coop_id = api.get("/cooperatives").get_json()["items"][0]["id"]
    edited = admin.post(
        f"/admin/cooperatives/{coop_id}",
        {"name": "华家岭合作社", "region": "甘肃", "description": ""},
    )

    assert created.status_code == 302
    assert duplicate.status_code == 422 and 'data-field="name"' in text(duplicate)
    assert edited.status_code == 302
    assert api.get(f"/cooperatives/{coop_id}").get_json()["name"] == "华家岭合作社"
