"""Security headers on every answer, a Content-Security-Policy the pages live with (no inline
code anywhere), and servers that do not announce their software."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

ADDRESS = {"name": "张伟", "phone": "13800000000", "region": "新疆 尉犁县", "detail": "团结路 1 号"}


def csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


def assert_secure_headers(response) -> None:
    policy = csp(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline scripts, no eval
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers  # nginx's job, once TLS is on


def test_every_kind_of_answer_carries_the_headers(client, api):
    # when a page, an API answer, an error page, an API error and a static file are fetched
    answers = {
        "page": client.get("/"),
        "api": api.get("/products"),
        "error page": client.get("/no-such-page"),
        "api error": api.get("/auth/me"),
        "static file": client.get("/static/css/site.css"),
        "package static file": client.get("/live/static/player.js"),
    }

    # then each carries the same security headers
    assert [r.status_code for r in answers.values()] == [200, 200, 404, 401, 200, 200]
    for response in answers.values():
        assert_secure_headers(response)


def test_the_policy_lets_the_live_page_stream_and_talk_to_socketio(client):
    policy = csp(client.get("/"))

    assert "ws://localhost" in policy["connect-src"]  # Socket.IO's WebSocket on this host
    assert {"'self'", "https:"} <= set(policy["connect-src"])  # hls.js fetches the stream
    assert {"'self'", "blob:", "https:"} <= set(policy["media-src"])  # MediaSource, native HLS
    assert "blob:" in policy["worker-src"]  # hls.js's worker
    assert policy["frame-src"] == ["https:"]  # embedded players
    assert "https://js.stripe.com" not in " ".join(sum(policy.values(), []))


def test_the_stream_sources_are_a_setting(database_url, tmp_path):
    from tests.conftest import make_app

    app = make_app(database_url, tmp_path, CSP_STREAM_SOURCES="https://live.example.cn")
    policy = csp(app.test_client().get("/"))

    assert (
        "https:" not in policy["connect-src"] and "https://live.example.cn" in policy["media-src"]
    )
    assert policy["frame-src"] == ["https://live.example.cn"]


def test_stripe_is_allowed_only_when_it_is_the_provider(app, client):
    app.config.update(PAYMENT_PROVIDER="stripe")

    policy = csp(client.get("/"))

    assert policy["script-src"] == ["'self'", "https://js.stripe.com", "https://*.js.stripe.com"]
    assert "https://hooks.stripe.com" in policy["frame-src"]
    assert "https://api.stripe.com" in policy["connect-src"]


def test_an_odd_host_header_cannot_write_into_the_policy(client):
    response = client.get("/", headers={"Host": "evil;script-src *"})

    assert "script-src *" not in response.headers["Content-Security-Policy"]


def test_no_template_has_inline_code():
    # the policy runs no inline <script>, no on*= handler and no style attribute or <style>
    inline, checked = [], 0
    for path in sorted(ROOT.glob("*/**/templates/**/*.html")):
        if ".venv" in path.parts or "node_modules" in path.parts:
            continue
        checked += 1
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                inline.append(f"{path.relative_to(ROOT)}: {tag}")
        for match in re.findall(r"<[a-z][^>]*\s(on[a-z]+|style)\s*=", text):
            inline.append(f"{path.relative_to(ROOT)}: {match}=")
        if "<style" in text:
            inline.append(f"{path.relative_to(ROOT)}: <style>")

    assert checked > 30 and inline == []


# --- in a browser, on a real server -------------------------------------------------------------


def _login(context, base: str, user) -> None:
    token = context.request.get(base + "/api/v1/auth/csrf").json()["csrf_token"]
    response = context.request.post(
        base + "/api/v1/auth/login",
        data={"email": user.email, "password": user.password},
        headers={"X-CSRFToken": token},
    )
    assert response.ok, response.text()


def _scene(factory, login_as) -> dict:
    """A live session with a stream, a buyer with two unpaid orders and a paid one."""
    coop_id = factory.cooperative()
    people = {
        "host": factory.user("host"),
        "buyer": factory.user("buyer"),
        "coop": factory.user("coop", cooperative_id=coop_id),
        "admin": factory.user("admin"),
    }
    product = factory.product(coop_id, variants=[{"name": "2 kg", "price": 8800, "stock": 50}])
    host = login_as(people["host"])
    session = host.post(
        "/live-sessions", {"title": "罗布羊专场", "stream_url": "https://example.com/live.m3u8"}
    ).get_json()["id"]
    host.post(f"/live-sessions/{session}/start")
    buyer = login_as(people["buyer"])
    item = [{"variant_id": product["variant_ids"][0], "quantity": 1}]
    orders = [
        buyer.post("/orders", {"items": item, "address": ADDRESS}).get_json() for _ in range(3)
    ]
    assert buyer.post(f"/payments/demo/{orders[2]['id']}/confirm").status_code == 200
    return {"people": people, "session": session, "product": product["id"], "orders": orders}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.only_db("sqlite")
def test_pages_run_under_the_policy_without_a_violation(factory, login_as, start_server, browser):
    # given a server with a live stream, orders and shipments
    scene = _scene(factory, login_as)
    server = start_server(PAYMENT_PROVIDER="demo", RUN_BACKGROUND_TASKS="0")
    base, people, orders = server.url, scene["people"], scene["orders"]
    violations: list[str] = []

    def context_for(role: str | None):
        context = browser.new_context()
        context.add_init_script("window.print = () => { window.printed = true; };")
        if role:
            _login(context, base, people[role])
        return context

    def open_page(context, path: str):
        page = context.new_page()
        page.on(
            "console", lambda m: "Content Security Policy" in m.text and violations.append(m.text)
        )
        page.on("pageerror", lambda exc: violations.append(f"pageerror {exc}"))
        page.goto(base + path)
        return page

    contexts = []
    try:
        # when anyone browses the storefront, a product and the live page
        contexts.append(anonymous := context_for(None))
        for path in ("/", f"/products/{scene['product']}", "/login", "/register"):
            open_page(anonymous, path).wait_for_load_state("load")
        live = open_page(anonymous, f"/live/{scene['session']}")
        live.locator("#live[data-joined=true]").wait_for(timeout=10_000)  # Socket.IO connected

        # the host runs the console; the buyer pays one order and cancels another
        contexts.append(host := context_for("host"))
        open_page(host, f"/host/live/{scene['session']}").locator(
            "#console[data-joined=true]"
        ).wait_for(timeout=10_000)
        contexts.append(buyer := context_for("buyer"))
        pay = open_page(buyer, f"/orders/{orders[0]['id']}/pay")
        pay.click("#demo-confirm")
        pay.wait_for_url(re.compile(r".*/orders/\d+$"))
        assert pay.locator("#order-status").get_attribute("data-status") == "paid"
        detail = open_page(buyer, f"/orders/{orders[1]['id']}")
        asked: list[str] = []
        detail.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        detail.click("#cancel-button")
        detail.wait_for_load_state("load")
        assert asked and detail.locator("#order-status").get_attribute("data-status") == "cancelled"
        waiting = open_page(buyer, f"/orders/{orders[2]['id']}?payment_intent=pi_x")
        waiting.wait_for_load_state("load")
        open_page(buyer, "/orders").wait_for_load_state("load")

        # the cooperative prints its pick list and slips; the admin reads reports
        contexts.append(coop := context_for("coop"))
        open_page(coop, "/coop").wait_for_load_state("load")
        picks = open_page(coop, "/coop/pick-list")
        picks.click("[data-print]")
        assert picks.evaluate("window.printed") is True
        open_page(coop, "/coop/slips?size=label").wait_for_load_state("load")
        contexts.append(admin := context_for("admin"))
        open_page(admin, "/admin/users").wait_for_load_state("load")
        report = open_page(admin, f"/reports/live-sessions/{scene['session']}")
        report.wait_for_function("window.farmliveReportChart !== undefined")
        open_page(admin, "/reports").wait_for_load_state("load")

        # then no page broke the policy, and the policy is really enforced: injected inline
        # code does not run
        assert violations == []
        ran = live.evaluate(
            """() => { const s = document.createElement('script');
                s.textContent = 'window.injected = true'; document.body.appendChild(s);
                return window.injected === true; }"""
        )
        assert ran is False
        live.wait_for_timeout(200)
        assert any("inline script" in v for v in violations)  # and this test would notice
    finally:
        for context in contexts:
            context.close()


# --- server banners -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.only_db("sqlite")
def test_python_wsgi_py_does_not_announce_werkzeug(start_server):
    server = start_server()

    response = requests.get(server.url + "/", timeout=10)

    assert "werkzeug" not in response.headers.get("Server", "").lower()
    assert "python" not in response.headers.get("Server", "").lower()
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.slow
@pytest.mark.only_db("postgresql")
def test_gunicorn_does_not_announce_itself(app, database_url: str, tmp_path: Path):
    from bench.servers import GunicornServer, base_env

    env = base_env(
        DATABASE_URL=database_url,
        SECRET_KEY="a" * 40,
        RATELIMIT_ENABLED="0",
        RUN_BACKGROUND_TASKS="0",
        UPLOAD_FOLDER=str(tmp_path / "uploads"),
    )
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    try:
        response = requests.get(server.url + "/", timeout=10)
    finally:
        server.stop()

    assert "gunicorn" not in response.headers.get("Server", "").lower()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
