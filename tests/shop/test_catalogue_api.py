"""Cooperatives, products and variants through the JSON API: roles, validation, odd input."""

from __future__ import annotations

NEW_PRODUCT = {
    "name": "羊排",
    "description": "肋排",
    "variants": [{"name": "ribs 1 kg", "price": 9800, "stock": 20}],
}


def test_anyone_lists_and_reads_cooperatives(api, factory):
    coop_id = factory.cooperative("华家岭蔬菜合作社", region="甘肃 华家岭镇")

    listing = api.get("/cooperatives").get_json()["items"]
    one = api.get(f"/cooperatives/{coop_id}").get_json()

    assert [c["name"] for c in listing] == ["华家岭蔬菜合作社"]
    assert one["id"] == coop_id and one["region"] == "甘肃 华家岭镇"


def test_admin_creates_cooperative(login_as, factory):
    admin = login_as(factory.user("admin"))

    response = admin.post("/cooperatives", {"name": "尉犁羊肉合作社", "region": "新疆 尉犁县"})

    assert response.status_code == 201
    assert {"id", "name", "region"} <= set(response.get_json())
    assert admin.get("/cooperatives").get_json()["items"][0]["name"] == "尉犁羊肉合作社"


def test_only_admin_creates_cooperative(login_as, factory):
    for role in ("buyer", "host", "coop"):
        response = login_as(factory.user(role)).post("/cooperatives", {"name": "X", "region": "Y"})

        assert response.status_code == 403, role
        assert response.get_json()["error"]["code"] == "forbidden"


def test_logged_out_writer_gets_401_before_validation(api):
    assert api.post("/cooperatives", {"name": 5}).status_code == 401
    assert api.post("/products", {}).status_code == 401
    assert api.patch("/variants/1", {"price": "x"}).status_code == 401


def test_cooperative_validation_names_fields(login_as, factory):
    admin = login_as(factory.user("admin"))

    response = admin.post("/cooperatives", {"name": "   ", "region": 7})

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"name", "region"}


def test_duplicate_cooperative_name_is_409(login_as, factory):
    admin = login_as(factory.user("admin"))
    admin.post("/cooperatives", {"name": "同名", "region": "R"})

    response = admin.post("/cooperatives", {"name": "同名", "region": "R"})

    assert response.status_code == 409
    assert "name" in response.get_json()["error"]["fields"]


def test_coop_member_creates_product_for_own_cooperative(coop_setup):
    client = coop_setup["client"]

    response = client.post("/products", {**NEW_PRODUCT, "cooperative_id": coop_setup["coop_id"]})

    assert response.status_code == 201
    body = response.get_json()
    assert body["cooperative_id"] == coop_setup["coop_id"]
    variant = body["variants"][0]
    assert {k: variant[k] for k in ("name", "price", "stock")} == NEW_PRODUCT["variants"][0]
    assert variant["currency"] == "CNY" and isinstance(variant["id"], int)
    assert client.get(f"/products/{body['id']}").get_json()["name"] == "羊排"


def test_coop_member_cannot_create_for_another_cooperative(coop_setup, factory):
    other = factory.cooperative("别的合作社")

    response = coop_setup["client"].post("/products", {**NEW_PRODUCT, "cooperative_id": other})

    assert response.status_code == 403


def test_buyers_and_hosts_cannot_create_products(login_as, factory):
    coop_id = factory.cooperative()
    for role in ("buyer", "host"):
        client = login_as(factory.user(role))

        response = client.post("/products", {**NEW_PRODUCT, "cooperative_id": coop_id})

        assert response.status_code == 403, role


def test_admin_creates_product_for_any_cooperative(login_as, factory):
    coop_id = factory.cooperative()
    admin = login_as(factory.user("admin"))

    response = admin.post("/products", {**NEW_PRODUCT, "cooperative_id": coop_id})

    assert response.status_code == 201


def test_admin_product_for_missing_cooperative_is_422(login_as, factory):
    admin = login_as(factory.user("admin"))

    response = admin.post("/products", {**NEW_PRODUCT, "cooperative_id": 4242})

    assert response.status_code == 422
    assert "cooperative_id" in response.get_json()["error"]["fields"]


PRODUCT_CASES = [
    ({}, {"name", "cooperative_id", "variants"}),
    (
        {"name": "", "cooperative_id": "1", "variants": []},
        {"name", "cooperative_id", "variants"},
    ),
    (
        {"name": "x" * 121, "cooperative_id": 10**30, "variants": "no"},
        {"name", "cooperative_id", "variants"},
    ),
    (
        {
            "name": "羊",
            "cooperative_id": 1,
            "variants": [{"name": "a", "price": -1, "stock": 1.5}],
        },
        {"variants"},
    ),
    (
        {
            "name": "羊",
            "cooperative_id": 1,
            "variants": [{"name": "a", "price": 10**12, "stock": 1}],
        },
        {"variants"},
    ),
]


def test_product_validation_names_each_bad_field(coop_setup):
    for body, bad in PRODUCT_CASES:
        response = coop_setup["client"].post("/products", body)

        assert response.status_code == 422, body
        assert set(response.get_json()["error"]["fields"]) == bad


def test_nested_variant_errors_name_the_variant_field(coop_setup):
    body = {
        "name": "羊",
        "cooperative_id": coop_setup["coop_id"],
        "variants": [{"name": "a", "price": "88.00", "stock": -1}],
    }

    fields = coop_setup["client"].post("/products", body).get_json()["error"]["fields"]

    assert set(fields["variants"]["0"]) == {"price", "stock"}


def test_duplicate_variant_names_are_refused(coop_setup):
    variant = {"name": "2 kg", "price": 100, "stock": 1}
    body = {"name": "羊", "cooperative_id": coop_setup["coop_id"], "variants": [variant, variant]}

    response = coop_setup["client"].post("/products", body)

    assert response.status_code == 422 and "variants" in response.get_json()["error"]["fields"]


def test_missing_body_and_wrong_content_type_are_4xx_not_500(coop_setup):
    client = coop_setup["client"]

    no_body = client.request("POST", "/products")
    text = client.request("POST", "/products", data="name=x", content_type="text/plain")
    a_list = client.post("/products", [1, 2])

    assert no_body.status_code == 422
    assert text.status_code == 422
    assert a_list.status_code == 422
    for response in (no_body, text, a_list):
        assert response.is_json and "error" in response.get_json()


def test_list_products_filters_by_cooperative_and_text(api, factory):
    mutton = factory.cooperative("羊")
    veg = factory.cooperative("菜")
    factory.product(mutton, name="罗布羊后腿")
    factory.product(veg, name="华家岭马铃薯")
    factory.product(veg, name="100%_纯天然")

    def names(query: str) -> list[str]:
        response = api.get("/products" + query)
        assert response.status_code == 200
        return [p["name"] for p in response.get_json()["items"]]

    assert names(f"?cooperative_id={veg}") == ["华家岭马铃薯", "100%_纯天然"]
    assert names("?q=后腿") == ["罗布羊后腿"]
    assert names("?q=%25_") == ["100%_纯天然"]  # LIKE wildcards are literal
    assert names("?q=nothing") == []


def test_bad_product_query_is_422(api):
    for query in ("?cooperative_id=abc", "?cooperative_id=99999999999999999999"):
        response = api.get("/products" + query)

        assert response.status_code == 422
        assert "cooperative_id" in response.get_json()["error"]["fields"]


def test_missing_ids_are_json_404(api):
    for path in ("/products/999", "/products/99999999999999999999", "/cooperatives/5"):
        response = api.get(path)

        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"


def test_product_shape_matches_contract(api, factory):
    product = factory.product(variants=[{"name": "整羊", "price": 168000, "stock": 2}])

    body = api.get(f"/products/{product['id']}").get_json()

    assert {"id", "name", "description", "cooperative_id", "variants"} <= set(body)
    assert {"id", "name", "price", "stock"} <= set(body["variants"][0])
    assert body["variants"][0]["price"] == 168000


def test_hidden_product_is_404_for_shoppers_but_visible_to_its_cooperative(coop_setup, api):
    product_id = coop_setup["product"]["id"]
    client = coop_setup["client"]

    assert client.patch(f"/products/{product_id}", {"active": False}).status_code == 200

    assert api.get(f"/products/{product_id}").status_code == 404
    assert api.get("/products").get_json()["items"] == []
    assert client.get(f"/products/{product_id}").get_json()["active"] is False


def test_coop_member_edits_own_product_but_not_others(coop_setup, factory):
    client = coop_setup["client"]
    mine = coop_setup["product"]["id"]
    theirs = factory.product(factory.cooperative("别家"))["id"]

    renamed = client.patch(f"/products/{mine}", {"name": "羊后腿", "description": "2 kg"})
    refused = client.patch(f"/products/{theirs}", {"name": "抢来的"})

    assert renamed.status_code == 200 and renamed.get_json()["name"] == "羊后腿"
    assert refused.status_code == 403


def test_product_patch_validation_and_missing(coop_setup):
    client = coop_setup["client"]
    product_id = coop_setup["product"]["id"]

    bad = client.patch(f"/products/{product_id}", {"name": "", "active": "maybe"})
    missing = client.patch("/products/987654", {"name": "x"})

    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"name", "active"}
    assert missing.status_code == 404


def test_variant_patch_sets_price_and_stock(coop_setup, api):
    variant_id = coop_setup["product"]["variant_ids"][0]

    response = coop_setup["client"].patch(f"/variants/{variant_id}", {"price": 9900, "stock": 0})

    assert response.status_code == 200
    assert response.get_json() == {
        "id": variant_id,
        "name": "2 kg leg",
        "price": 9900,
        "stock": 0,
        "currency": "CNY",
    }
    product = api.get(f"/products/{coop_setup['product']['id']}").get_json()
    assert product["variants"][0]["price"] == 9900


def test_variant_patch_announces_stock_change(coop_setup, app):
    from shop import signals

    seen: list = []

    def receiver(sender, variant_ids):
        seen.append(variant_ids)

    variant_id = coop_setup["product"]["variant_ids"][0]
    with signals.stock_changed.connected_to(receiver):
        coop_setup["client"].patch(f"/variants/{variant_id}", {"stock": 3})
        coop_setup["client"].patch(f"/variants/{variant_id}", {"price": 1})

    assert seen == [[variant_id]]


def test_variant_patch_validation(coop_setup):
    variant_id = coop_setup["product"]["variant_ids"][0]
    cases = [
        ({"price": "99"}, {"price"}),
        ({"price": -1, "stock": -5}, {"price", "stock"}),
        ({"stock": 10**20}, {"stock"}),
        ({"price": 1.5}, {"price"}),
        ({"name": ""}, {"name"}),
    ]
    for body, bad in cases:
        response = coop_setup["client"].patch(f"/variants/{variant_id}", body)

        assert response.status_code == 422, body
        assert set(response.get_json()["error"]["fields"]) == bad


def test_variant_patch_roles(coop_setup, factory, login_as):
    variant_id = coop_setup["product"]["variant_ids"][0]
    other_coop = login_as(factory.user("coop"))
    buyer = login_as(factory.user("buyer"))
    admin = login_as(factory.user("admin"))

    assert other_coop.patch(f"/variants/{variant_id}", {"stock": 1}).status_code == 403
    assert buyer.patch(f"/variants/{variant_id}", {"stock": 1}).status_code == 403
    assert admin.patch(f"/variants/{variant_id}", {"stock": 1}).status_code == 200
    assert admin.patch("/variants/424242", {"stock": 1}).status_code == 404


def test_add_variant(coop_setup):
    client = coop_setup["client"]
    product_id = coop_setup["product"]["id"]

    added = client.post(
        f"/products/{product_id}/variants", {"name": "4 kg", "price": 17000, "stock": 3}
    )
    duplicate = client.post(
        f"/products/{product_id}/variants", {"name": "4 kg", "price": 1, "stock": 1}
    )

    assert added.status_code == 201 and added.get_json()["name"] == "4 kg"
    assert duplicate.status_code == 409
    names = [v["name"] for v in client.get(f"/products/{product_id}").get_json()["variants"]]
    assert names == ["2 kg leg", "4 kg"]


def test_unicode_text_round_trips(coop_setup):
    name = "🐑 罗布羊 «spécial»"

    response = coop_setup["client"].post(
        "/products", {**NEW_PRODUCT, "name": name, "cooperative_id": coop_setup["coop_id"]}
    )

    assert response.status_code == 201 and response.get_json()["name"] == name


def test_wrong_method_is_json_405(api):
    response = api.delete("/products")

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_openapi_document_lists_catalogue(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]

    for path in (
        "/api/v1/auth/login",
        "/api/v1/products/{product_id}",
        "/api/v1/variants/{variant_id}",
    ):
        assert path in paths


def test_odd_json_bodies_get_4xx_never_500(coop_setup):
    variant_id = coop_setup["product"]["variant_ids"][0]
    bodies = {
        b"\xff\xfe": 400,
        b'{"price": NaN}': 422,
        b'{"price": 1e400}': 422,
        b'{"stock": true}': 422,
        b"null": 422,
        b"[" * 100_000 + b"]" * 100_000: 400,
    }
    for raw, status in bodies.items():
        response = coop_setup["client"].request(
            "PATCH", f"/variants/{variant_id}", data=raw, content_type="application/json"
        )

        assert response.status_code == status, raw[:20]
        assert response.get_json()["error"]["code"] in {"bad_request", "invalid"}
