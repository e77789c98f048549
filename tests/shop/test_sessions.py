"""Sessions end on the server (logout, password change, deactivation), last a set time, and
logins neither reveal which emails have accounts nor let one account be guessed at, while a
crowd behind one carrier NAT still gets in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import event, select

from tests.conftest import ApiClient, make_app
from tests.shop.conftest import Browser

# --- helpers ----------------------------------------------------------------------------------


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def stranger_with(app, cookie: str) -> ApiClient:
    """Another browser that holds a copy of someone's session cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return ApiClient(client)


def crowd(app, factory, n: int) -> list[str]:
    """`n` buyer emails (password "password123"), inserted at once: one hash for all."""
    from shop.extensions import db
    from shop.models import User

    template = factory.user("buyer")
    with app.app_context():
        password_hash = db.session.get(User, template.id).password_hash
        db.session.add_all(
            User(email=f"crowd{i}@example.com", name=f"买家{i}", password_hash=password_hash)
            for i in range(n - 1)
        )
        db.session.commit()
    return [template.email, *(f"crowd{i}@example.com" for i in range(n - 1))]


def log_in(app, channel: str, email: str, password: str = "password123") -> int:
    """Log in through the API or the login page from a fresh browser; the HTTP status."""
    if channel == "api":
        client = ApiClient(app.test_client())
        return client.post("/auth/login", {"email": email, "password": password}).status_code
    page = Browser(app.test_client())
    return page.post("/login", {"email": email, "password": password}).status_code


OK = {"api": 200, "page": 302}
WRONG = {"api": 401, "page": 401}


# --- the session ends on the server -----------------------------------------------------------


def test_a_cookie_copied_before_api_logout_is_refused_after_it(app, factory, login_as):
    # given a buyer logged in, and a copy of their cookie (a shared phone, a stolen cookie)
    buyer = login_as(factory.user())
    copy = session_cookie(buyer.client)
    assert stranger_with(app, copy).get("/auth/me").status_code == 200

    # when the buyer logs out
    assert buyer.post("/auth/logout").status_code == 204

    # then the copy no longer logs anyone in
    assert stranger_with(app, copy).get("/auth/me").status_code == 401
    assert buyer.get("/auth/me").status_code == 401


def test_a_cookie_copied_before_page_logout_is_refused_after_it(app, factory, browser_as):
    # given a buyer logged in through the login page, and a copy of the cookie
    page = browser_as(factory.user())
    copy = session_cookie(page.client)

    # when they log out with the page's button
    assert page.post("/logout").status_code == 302

    # then the copy is refused on pages and in the API
    thief = stranger_with(app, copy)
    assert thief.get("/auth/me").status_code == 401
    assert thief.client.get("/orders").status_code == 302  # sent to log in


def test_logout_ends_the_accounts_other_sessions_too(factory, login_as):
    # given one account logged in on a phone and a laptop
    user = factory.user()
    phone, laptop = login_as(user), login_as(user)

    # when it logs out on the phone
    phone.post("/auth/logout")

    # then the laptop is logged out as well (one version per account: "log out everywhere"),
    # and logging in again works
    assert laptop.get("/auth/me").status_code == 401
    assert login_as(user).get("/auth/me").status_code == 200


def test_password_change_ends_other_sessions_and_keeps_this_one(app, factory, login_as, new_api):
    # given an account logged in twice, and an old copy of the first cookie
    user = factory.user()
    here, elsewhere = login_as(user), login_as(user)
    copy = session_cookie(here.client)

    # when it changes its password here
    changed = here.post(
        "/auth/password", {"current_password": user.password, "new_password": "n3w-password"}
    )

    # then this session goes on, every other one (and the copy) is refused, and only the new
    # password logs in
    assert changed.status_code == 204
    assert here.get("/auth/me").get_json()["email"] == user.email
    assert elsewhere.get("/auth/me").status_code == 401
    assert stranger_with(app, copy).get("/auth/me").status_code == 401
    fresh = new_api()
    assert (
        fresh.post("/auth/login", {"email": user.email, "password": user.password}).status_code
        == 401
    )
    fresh.login(user.email, "n3w-password")


def test_password_change_checks_the_current_password_and_the_new_one(app, factory, login_as, api):
    # given a logged-in buyer
    user = factory.user()
    client = login_as(user)

    # when the current password is wrong, the new one too short, or nobody is logged in
    wrong = client.post(
        "/auth/password", {"current_password": "nope", "new_password": "long-enough"}
    )
    short = client.post("/auth/password", {"current_password": user.password, "new_password": "x"})
    anonymous = api.post("/auth/password", {"current_password": "a", "new_password": "b" * 8})

    # then each is refused in the error shape, and the password and session are unchanged
    assert wrong.status_code == 422
    assert wrong.get_json()["error"]["code"] == "wrong_password"
    assert set(wrong.get_json()["error"]["fields"]) == {"current_password"}
    assert short.status_code == 422 and "new_password" in short.get_json()["error"]["fields"]
    assert anonymous.status_code == 401
    assert client.get("/auth/me").status_code == 200
    login_as(user)  # the old password still works


def test_deactivation_ends_sessions_even_after_reactivation(app, factory, login_as):
    # given a buyer logged in and an admin
    buyer = factory.user()
    session = login_as(buyer)
    admin = login_as(factory.user("admin"))
    admin.patch(f"/users/{buyer.id}", {"name": "新名字"})  # a rename ends nothing
    assert session.get("/auth/me").get_json()["name"] == "新名字"

    # when the admin deactivates the account, then reactivates it
    assert admin.patch(f"/users/{buyer.id}", {"active": False}).status_code == 200
    refused_while_inactive = session.get("/auth/me").status_code
    assert admin.patch(f"/users/{buyer.id}", {"active": True}).status_code == 200

    # then the old session stays ended; the buyer logs in afresh
    assert refused_while_inactive == 401
    assert session.get("/auth/me").status_code == 401
    assert login_as(buyer).get("/auth/me").status_code == 200


def test_ending_sessions_is_one_atomic_update(app, factory):
    # given an account
    from shop.extensions import db
    from shop.models import User
    from shop.services import end_sessions

    user = factory.user()
    statements: list[str] = []

    # when its sessions are ended twice
    with app.app_context():
        engine = db.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, sql, ...)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            end_sessions(user.id)
            end_sessions(user.id)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        version = db.session.scalar(select(User.session_version).where(User.id == user.id))

    # then each was one UPDATE computing the new version in the database (no read-then-write)
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 2 and all("session_version + " in s for s in updates)
    assert not [s for s in statements if "session_version" in s and s.lstrip().startswith("SELECT")]
    assert version == 2


def test_a_cookie_from_before_session_versions_still_works_until_the_next_logout(app, factory):
    # given a cookie written before versions existed: the bare user id
    user = factory.user()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    old, copy = ApiClient(client), session_cookie(client)

    # then it is version 0: it works, and logging out ends it (and its copies) like any other
    assert old.get("/auth/me").status_code == 200
    assert old.post("/auth/logout").status_code == 204
    assert stranger_with(app, copy).get("/auth/me").status_code == 401


def test_login_lasts_the_session_lifetime(app, factory, api):
    # given the default lifetime
    user = factory.user()

    # when a buyer logs in
    response = api.post("/auth/login", {"email": user.email, "password": user.password})

    # then the cookie is kept for PERMANENT_SESSION_LIFETIME (14 days), HttpOnly, SameSite=Lax
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0])
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(days=14)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=1)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_session_older_than_its_lifetime_is_refused(database_url, tmp_path):
    # given a lifetime of two seconds, and Secure cookies
    app = make_app(
        database_url,
        tmp_path,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=2),
        SESSION_COOKIE_SECURE=True,
    )
    from tests.conftest import Factory

    user = Factory(app).user()
    client = ApiClient(app.test_client())
    response = client.post("/auth/login", {"email": user.email, "password": user.password})
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "Expires=" in cookie and "Secure" in cookie  # the browser forgets it too
    assert client.get("/auth/me").status_code == 200

    # when the cookie is older than that
    time.sleep(3.2)

    # then the server refuses it (the signature's age is checked, not only the browser's expiry)
    assert client.get("/auth/me").status_code == 401


# --- login timing -----------------------------------------------------------------------------


def test_every_login_checks_exactly_one_password_hash(app, factory, api, monkeypatch):
    # given a real account, a deactivated one, and a spy on the hash check
    import shop.accounts

    real = factory.user()
    gone = factory.user()
    login_as_admin = ApiClient(app.test_client())
    admin = factory.user("admin")
    login_as_admin.login(admin.email, admin.password)
    login_as_admin.patch(f"/users/{gone.id}", {"active": False})
    checked: list[str] = []
    original = shop.accounts.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash.split("$")[0])
        return original(pwhash, password)

    monkeypatch.setattr(shop.accounts, "check_password_hash", spy)
    attempts = {
        "unknown email": ("nobody@example.com", "password123"),
        "wrong password": (real.email, "wrong-password"),
        "deactivated": (gone.email, gone.password),
        "right password": (real.email, real.password),
    }

    # when each logs in
    counts = {}
    for name, (email, password) in attempts.items():
        before = len(checked)
        api.post("/auth/login", {"email": email, "password": password})
        counts[name] = len(checked) - before

    # then each cost one check of a hash of the configured method: the same work, the same time
    assert counts == dict.fromkeys(attempts, 1)
    assert set(checked) == {app.config["PASSWORD_HASH_METHOD"]}


# --- login limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["api", "page"])
def test_two_hundred_buyers_behind_one_address_all_log_in(app, factory, channel):
    # given 200 buyers behind one carrier NAT (the test client is always 127.0.0.1)
    emails = crowd(app, factory, 200)

    # when they all log in as the stream starts
    statuses = [log_in(app, channel, email) for email in emails]

    # then every one gets in
    assert statuses == [OK[channel]] * 200


@pytest.mark.parametrize("channel", ["api", "page"])
def test_one_account_is_locked_after_its_failures_while_another_logs_in(app, factory, channel):
    # given two accounts behind the same address
    victim, neighbour = factory.user(), factory.user()

    # when someone guesses the victim's password five times (the default: 5 per minute)
    guesses = [log_in(app, channel, victim.email, f"guess-{i}") for i in range(5)]

    # then the account is locked, even for its right password, while the neighbour logs in
    assert guesses == [WRONG[channel]] * 5
    assert log_in(app, channel, victim.email.upper(), victim.password) == 429
    assert log_in(app, channel, neighbour.email, neighbour.password) == OK[channel]


def test_a_locked_account_answers_429_in_the_error_shape_with_retry_after(app, factory, api):
    victim = factory.user()
    for i in range(5):
        api.post("/auth/login", {"email": victim.email, "password": f"guess-{i}"})

    locked = api.post("/auth/login", {"email": f"  {victim.email} ", "password": victim.password})

    assert locked.status_code == 429
    assert locked.get_json()["error"]["code"] == "too_many_requests"
    assert int(locked.headers["Retry-After"]) > 0


def test_an_unknown_email_is_locked_like_a_real_one(app):
    # so the lockout does not tell which emails have accounts
    statuses = [log_in(app, "api", "nobody@example.com", f"guess-{i}") for i in range(6)]

    assert statuses == [401] * 5 + [429]


def test_only_failures_count_against_an_account(app, factory):
    user = factory.user()

    statuses = [log_in(app, "api", user.email, user.password) for _ in range(12)]

    assert statuses == [200] * 12


def test_page_api_and_password_change_share_an_accounts_budget(app, factory, login_as):
    # given an account whose session someone else holds
    user = factory.user()
    session = login_as(user)

    # when guesses arrive through the page, the API and the password change
    statuses = [log_in(app, "page", user.email, "guess-a"), log_in(app, "api", user.email, "b")]
    for i in range(3):
        changed = session.post(
            "/auth/password", {"current_password": f"guess-{i}", "new_password": "n3w-password"}
        )
        statuses.append(changed.status_code)

    # then they count together: the sixth attempt is refused wherever it comes from
    assert statuses == [401, 401, 422, 422, 422]
    assert log_in(app, "api", user.email, user.password) == 429
    locked = session.post(
        "/auth/password", {"current_password": user.password, "new_password": "n3w-password"}
    )
    assert locked.status_code == 429


def test_the_longer_windows_back_off(database_url, tmp_path):
    # given a short window and a long one
    app = make_app(database_url, tmp_path, LOGIN_RATE_LIMIT_PER_ACCOUNT="2 per second; 3 per hour")

    # when guesses go on after the short window has passed
    first = [log_in(app, "api", "someone@example.com", "x") for _ in range(3)]
    time.sleep(1.1)
    second = [log_in(app, "api", "someone@example.com", "x") for _ in range(2)]
    time.sleep(1.1)
    third = log_in(app, "api", "someone@example.com", "x")

    # then the long window keeps refusing
    assert first == [401, 401, 429]
    assert second == [401, 429]
    assert third == 429


def test_the_address_limit_still_applies(database_url, tmp_path):
    app = make_app(database_url, tmp_path, LOGIN_RATE_LIMIT_PER_ADDRESS="3 per minute")

    statuses = [log_in(app, "api", f"user{i}@example.com", "x") for i in range(4)]

    assert statuses == [401, 401, 401, 429]
