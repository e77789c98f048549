"""Product photo upload, admin account management and the login rate limit, through the API."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from tests.conftest import ApiClient, make_app
from tests.shop.conftest import image_bytes


def upload(client: ApiClient, product_id: int, data: bytes, filename: str = "photo.jpg"):
    return client.request(
        "POST",
        f"/products/{product_id}/photo",
        data={"photo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_photo_upload_stores_clean_jpeg(coop_setup, app, api):
    product_id = coop_setup["product"]["id"]
    for fmt, mode in [("JPEG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB")]:
        response = upload(
            coop_setup["client"], product_id, image_bytes(fmt, mode=mode), "../../e.php"
        )

        assert response.status_code == 200, fmt
        url = response.get_json()["photo_url"]
        name = url.rsplit("/", 1)[1]
        assert name.startswith(f"product-{product_id}-") and name.endswith(".jpg")
        stored = Path(app.config["UPLOAD_FOLDER"]) / name
        with Image.open(stored) as image:
            assert image.format == "JPEG" and image.size == (64, 48)
        served = api.client.get(url)
        assert served.status_code == 200 and served.data == stored.read_bytes()
        assert api.get(f"/products/{product_id}").get_json()["photo_url"] == url


def test_new_photo_replaces_old_file(coop_setup, app):
    product_id = coop_setup["product"]["id"]
    first = upload(coop_setup["client"], product_id, image_bytes()).get_json()["photo_url"]

    upload(coop_setup["client"], product_id, image_bytes("PNG"))

    files = list(Path(app.config["UPLOAD_FOLDER"]).iterdir())
    assert len(files) == 1 and files[0].name != first.rsplit("/", 1)[1]


BAD_PHOTOS = [
    (b"GIF89a" + b"\x00" * 100, "not a JPEG, PNG or WebP"),
    (b"<?php echo 'hi'; ?>", "not a JPEG, PNG or WebP"),
    (b"", "empty"),
    (image_bytes("GIF"), "Only JPEG, PNG or WebP"),
    (image_bytes("JPEG", size=(300, 300))[:400], "damaged"),
]


def test_bad_photo_is_refused_with_reason(coop_setup, app):
    for data, reason in BAD_PHOTOS:
        response = upload(coop_setup["client"], coop_setup["product"]["id"], data)

        assert response.status_code == 422, reason
        error = response.get_json()["error"]
        assert reason in error["message"] and "photo" in error["fields"]
    folder = Path(app.config["UPLOAD_FOLDER"])
    assert not folder.exists() or list(folder.iterdir()) == []


def test_missing_photo_field_is_422(coop_setup):
    response = coop_setup["client"].post(f"/products/{coop_setup['product']['id']}/photo", {})

    assert response.status_code == 422
    assert "photo" in response.get_json()["error"]["fields"]


def test_photo_over_size_limit_is_413(database_url, tmp_path):
    app = make_app(database_url, tmp_path, MAX_PHOTO_BYTES=2000, MAX_CONTENT_LENGTH=100_000)
    from tests.conftest import Factory

    factory = Factory(app)
    member = factory.user("coop")
    product = factory.product(member.cooperative_id)
    client = ApiClient(app.test_client())
    client.login(member.email)
    big = image_bytes("PNG", size=(400, 400), mode="RGB")
    noisy = Image.frombytes("RGB", (100, 100), os.urandom(30_000))  # a real image, ~30 KB
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")

    too_big = upload(client, product["id"], buffer.getvalue())
    way_too_big = upload(client, product["id"], big + b"\x00" * 200_000)

    assert too_big.status_code == 413
    assert too_big.get_json()["error"]["code"] == "too_large"
    assert way_too_big.status_code == 413 and way_too_big.is_json


def test_photo_upload_roles(coop_setup, factory, login_as, api):
    product_id = coop_setup["product"]["id"]
    other = login_as(factory.user("coop"))
    buyer = login_as(factory.user("buyer"))
    admin = login_as(factory.user("admin"))

    assert upload(api, product_id, image_bytes()).status_code == 401
    assert upload(buyer, product_id, image_bytes()).status_code == 403
    assert upload(other, product_id, image_bytes()).status_code == 403
    assert upload(admin, 987654, image_bytes()).status_code == 404
    assert upload(admin, product_id, image_bytes()).status_code == 200


def test_admin_lists_creates_and_deactivates_users(login_as, factory, new_api):
    admin = login_as(factory.user("admin"))
    coop_id = factory.cooperative()

    created = admin.post(
        "/users",
        {
            "email": "Host@Example.com",
            "password": "long-enough",
            "name": "王副县长",
            "role": "host",
        },
    )
    member = admin.post(
        "/users",
        {
            "email": "m@e.com",
            "password": "long-enough",
            "name": "社员",
            "role": "coop",
            "cooperative_id": coop_id,
        },
    )
    host_id = created.get_json()["id"]
    host = new_api()
    host.login("host@example.com", "long-enough")

    assert created.status_code == 201 and created.get_json()["role"] == "host"
    assert member.status_code == 201 and member.get_json()["cooperative_id"] == coop_id
    hosts = admin.get("/users?role=host").get_json()["items"]
    assert [u["email"] for u in hosts] == ["host@example.com"]

    deactivated = admin.patch(f"/users/{host_id}", {"active": False})

    assert deactivated.status_code == 200 and deactivated.get_json()["active"] is False
    assert host.get("/auth/me").status_code == 401  # the open session ends too
    again = new_api().post("/auth/login", {"email": "host@example.com", "password": "long-enough"})
    assert again.status_code == 401


def test_admin_user_validation(login_as, factory):
    admin = login_as(factory.user("admin"))

    bad = admin.post("/users", {"email": "x", "password": "1", "name": "", "role": "king"})
    coop_without = admin.post(
        "/users", {"email": "c@e.com", "password": "long-enough", "name": "c", "role": "coop"}
    )
    missing_coop = admin.post(
        "/users",
        {
            "email": "d@e.com",
            "password": "long-enough",
            "name": "d",
            "role": "coop",
            "cooperative_id": 999,
        },
    )

    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"email", "password", "name", "role"}
    assert (
        coop_without.status_code == 422
        and "cooperative_id" in coop_without.get_json()["error"]["fields"]
    )
    assert missing_coop.status_code == 422


def test_admin_cannot_deactivate_self_and_missing_user_is_404(login_as, factory):
    admin_ref = factory.user("admin")
    admin = login_as(admin_ref)

    assert admin.patch(f"/users/{admin_ref.id}", {"active": False}).status_code == 409
    assert admin.patch("/users/99999", {"active": False}).status_code == 404
    assert admin.patch(f"/users/{admin_ref.id}", {"active": "perhaps"}).status_code == 422


def test_user_management_is_admin_only(login_as, factory):
    for role in ("buyer", "host", "coop"):
        client = login_as(factory.user(role))

        assert client.get("/users").status_code == 403
        assert client.post("/users", {}).status_code == 403
        assert client.patch("/users/1", {"active": False}).status_code == 403


def test_logged_out_user_management_is_401(api):
    assert api.get("/users").status_code == 401
    assert api.post("/users", {"role": 1}).status_code == 401


def test_admin_updates_cooperative(login_as, factory, api):
    coop_id = factory.cooperative("旧名")
    admin = login_as(factory.user("admin"))

    response = admin.patch(f"/cooperatives/{coop_id}", {"name": "新名", "region": "甘肃 华家岭镇"})

    assert response.status_code == 200
    assert api.get(f"/cooperatives/{coop_id}").get_json()["name"] == "新名"
    assert (
        login_as(factory.user("coop")).patch(f"/cooperatives/{coop_id}", {"name": "x"}).status_code
        == 403
    )


def test_login_is_rate_limited_with_api_error_shape(database_url, tmp_path):
    app = make_app(database_url, tmp_path, LOGIN_RATE_LIMIT_PER_ACCOUNT="3 per minute")
    client = ApiClient(app.test_client())
    body = {"email": "nobody@example.com", "password": "wrong"}

    statuses = [client.post("/auth/login", body).status_code for _ in range(4)]
    limited = client.post("/auth/login", body)

    assert statuses == [401, 401, 401, 429]
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/auth/csrf").status_code == 200  # other endpoints are not limited
