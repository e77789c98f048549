"""seed-demo (idempotent, realistic), `users create`, and the account security settings."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from shop.demo import DEMO_PASSWORD, DEMO_USERS


def row_counts(app) -> dict[str, int]:
    from shop.extensions import db

    with app.app_context():
        counts = {
            t.name: db.session.scalar(select(func.count()).select_from(t))
            for t in db.metadata.sorted_tables
        }
        db.session.remove()
        return counts


def test_seed_demo_is_realistic_and_idempotent(app, new_api):
    runner = app.test_cli_runner()

    first = runner.invoke(args=["seed-demo"])
    after_first = row_counts(app)
    second = runner.invoke(args=["seed-demo"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert row_counts(app) == after_first
    assert after_first["cooperative"] == 2 and after_first["product"] >= 6
    assert after_first["user"] == len(DEMO_USERS)

    api = new_api()
    coops = {c["name"]: c for c in api.get("/cooperatives").get_json()["items"]}
    assert any("尉犁" in c["region"] for c in coops.values())
    assert any("华家岭" in c["region"] for c in coops.values())
    products = api.get("/products").get_json()["items"]
    names = " ".join(p["name"] for p in products)
    for expected in ("后腿", "羊排", "整羊", "马铃薯", "娃娃菜", "胡萝卜"):
        assert expected in names
    for product in products:
        assert product["photo_url"] and api.client.get(product["photo_url"]).status_code == 200
        assert all(isinstance(v["price"], int) and v["price"] > 0 for v in product["variants"])
    assert len(list(Path(app.config["UPLOAD_FOLDER"]).glob("demo-*.jpg"))) == len(products)


def test_seeded_demo_logins_work_and_coop_users_have_cooperatives(app, new_api):
    app.test_cli_runner().invoke(args=["seed-demo"])

    roles = {}
    for spec in DEMO_USERS:
        client = new_api()
        client.login(spec["email"], DEMO_PASSWORD)
        me = client.get("/auth/me").get_json()
        roles[spec["email"]] = me
        assert me["role"] == spec["role"]
    coop_ids = {me["cooperative_id"] for me in roles.values() if me["role"] == "coop"}
    assert len(coop_ids) == 2 and None not in coop_ids
    mutton = roles["coop@farmlive.test"]["cooperative_id"]
    coop = new_api().get(f"/cooperatives/{mutton}").get_json()
    assert "尉犁" in coop["region"]


def test_seed_demo_runs_registered_seeders_after_shop_data(app):
    seen = []

    def seeder():
        from shop.extensions import db
        from shop.models import Product

        seen.append(db.session.scalar(select(func.count()).select_from(Product)))
        yield "extra: done"

    app.extensions["farmlive.seeders"].append(seeder)

    result = app.test_cli_runner().invoke(args=["seed-demo"])

    assert "extra: done" in result.output and seen and seen[0] >= 6


def test_demo_logins_command_prints_every_account(app):
    output = app.test_cli_runner().invoke(args=["demo-logins"]).output

    assert DEMO_PASSWORD in output
    for spec in DEMO_USERS:
        assert spec["email"] in output


def test_users_create_command_makes_any_role(app, new_api, factory):
    coop_id = factory.cooperative()
    runner = app.test_cli_runner()

    ok = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "c@e.com",
            "--password",
            "long-enough",
            "--role",
            "coop",
            "--cooperative",
            str(coop_id),
        ]
    )
    refused = runner.invoke(
        args=["users", "create", "--email", "x@e.com", "--password", "p", "--role", "coop"]
    )

    assert ok.exit_code == 0, ok.output
    assert refused.exit_code != 0 and "cooperative" in refused.output
    client = new_api()
    client.login("c@e.com", "long-enough")
    assert client.get("/auth/me").get_json()["cooperative_id"] == coop_id


def test_passwords_are_stored_as_scrypt_hashes(database_url, tmp_path):
    from tests.conftest import make_app

    app = make_app(database_url, tmp_path, PASSWORD_HASH_METHOD=None)  # production parameters
    from shop.extensions import db
    from shop.models import User
    from shop.services import create_user

    with app.app_context():
        create_user(email="a@example.com", password="s3cret-pass", name="A")
        stored = db.session.scalar(select(User.password_hash))

    assert stored.startswith("scrypt:32768:8:1$") and "s3cret-pass" not in stored


def test_session_cookie_is_httponly_and_samesite(api, factory):
    user = factory.user()

    response = api.post("/auth/login", {"email": user.email, "password": user.password})

    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_every_unsafe_api_method_needs_csrf(client, factory):
    for method, path in [
        ("POST", "/api/v1/products"),
        ("PATCH", "/api/v1/variants/1"),
        ("POST", "/api/v1/cooperatives"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/users"),
    ]:
        response = client.open(path, method=method, json={})
        assert response.status_code == 400, (method, path)
        assert response.get_json()["error"]["code"] == "csrf"
