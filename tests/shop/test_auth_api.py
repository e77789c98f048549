"""Accounts through the JSON API: register, log in, log out, me, CSRF, errors."""

from __future__ import annotations


def test_register_logs_in_as_buyer(api):
    response = api.post(
        "/auth/register", {"email": "Li@Example.com", "password": "s3cret-pass", "name": "李"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "li@example.com" and body["role"] == "buyer"
    assert api.get("/auth/me").get_json()["id"] == body["id"]


def test_register_names_each_bad_field(api):
    response = api.post("/auth/register", {"email": "not-an-email", "password": "short"})

    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert set(fields) == {"email", "password", "name"}


def test_unsafe_request_without_csrf_is_refused(client):
    response = client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x"})

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf"


def test_wrong_password_is_401_and_me_needs_login(api, factory):
    user = factory.user()

    assert api.post("/auth/login", {"email": user.email, "password": "wrong"}).status_code == 401
    assert api.get("/auth/me").status_code == 401


def test_logout_ends_session(login_as, factory):
    client = login_as(factory.user())

    assert client.post("/auth/logout").status_code == 204
    assert client.get("/auth/me").status_code == 401


def test_malformed_json_is_400_not_500(api):
    response = api.request("POST", "/auth/login", data="{nope", content_type="application/json")

    assert response.status_code == 400
    assert "error" in response.get_json()


def test_unknown_api_url_is_json_404(api):
    response = api.get("/nothing-here")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_me_has_the_contract_fields(login_as, factory):
    coop_id = factory.cooperative()
    member = factory.user("coop", cooperative_id=coop_id)

    me = login_as(member).get("/auth/me").get_json()

    assert me == {
        "id": member.id,
        "email": member.email,
        "name": me["name"],
        "role": "coop",
        "cooperative_id": coop_id,
    }


def test_register_twice_is_409_naming_email(api, new_api):
    body = {"email": "li@example.com", "password": "s3cret-pass", "name": "李"}
    api.post("/auth/register", body)

    response = new_api().post("/auth/register", {**body, "email": "LI@example.com"})

    assert response.status_code == 409
    assert "email" in response.get_json()["error"]["fields"]


def test_login_ignores_email_case_and_checks_types(api, factory):
    user = factory.user(email="wang@example.com")

    assert (
        api.post(
            "/auth/login", {"email": "WANG@example.com", "password": user.password}
        ).status_code
        == 200
    )
    bad = api.post("/auth/login", {"email": 5, "password": ["x"]})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {
        "email",
        "password",
    }


def test_logout_when_logged_out_is_401(api):
    assert api.post("/auth/logout").status_code == 401


def test_chinese_text_is_sent_as_utf8(api, factory):
    factory.cooperative("华家岭蔬菜合作社")

    assert "华家岭".encode() in api.get("/cooperatives").data
