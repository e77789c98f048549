"""Honest viewer figures: a viewer is a logged-in user or one browser's signed anonymous id, so
sockets, tabs and client-sent keys cannot inflate the count, the peak or the unique viewers;
sockets and joins per client address are bounded."""

from __future__ import annotations

import uuid

import pytest
from itsdangerous import Signer

from tests.live.conftest import events


def _join(sio, session_id: int, **extra) -> dict:
    return sio.emit("join", {"session_id": session_id, **extra}, namespace="/live", callback=True)


def _figures(app, session_id: int) -> tuple[int, int, list[str]]:
    """(viewers now, peak, unique viewer keys) of the session."""
    from live import viewers
    from live.models import LiveSession, ViewerVisit
    from shop.extensions import db

    with app.app_context():
        peak = db.session.get(LiveSession, session_id).peak_viewers
        keys = db.session.query(ViewerVisit.viewer_key).filter_by(session_id=session_id).all()
        return viewers.counter(app).count(session_id), peak, sorted(k for (k,) in keys)


def _viewer_set_cookie(response) -> str:
    found = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("farmlive_viewer=")]
    return found[0] if found else ""


def _raw_socket(app, flask_client=None, headers=None):
    """A /live test client that may be refused (the fixture's asserts it connected)."""
    from shop.extensions import socketio

    return socketio.test_client(
        app, namespace="/live", flask_test_client=flask_client, headers=headers
    )


def test_sixty_sockets_without_the_cookie_watch_but_do_not_count(live, socket_client, app):
    # given sixty sockets from one client that never opened the live page
    sockets = [socket_client() for _ in range(60)]

    # when they all join
    acks = [_join(sio, live.session_id) for sio in sockets]

    # then they watch (the room's news reaches them) but count for nothing, now or at peak
    assert all(ack["ok"] for ack in acks)
    assert [ack["state"]["viewers"] for ack in acks] == [0] * 60
    live.pin()
    assert all(events(sio, "pinned") for sio in sockets)
    assert _figures(app, live.session_id) == (0, 0, [])


def test_one_browser_in_five_tabs_is_one_viewer(live, socket_client, live_browser, app):
    # given one browser that opened the live page, in five tabs
    browser = live_browser(live.session_id)
    tabs = [socket_client(browser) for _ in range(5)]

    # when every tab joins
    counts = [_join(tab, live.session_id)["state"]["viewers"] for tab in tabs]

    # then one viewer, one peak, one unique viewer; it leaves with its last tab
    assert counts == [1] * 5
    viewers_now, peak, keys = _figures(app, live.session_id)
    assert (viewers_now, peak, len(keys)) == (1, 1, 1) and keys[0].startswith("a:")
    for tab in tabs[:4]:
        tab.disconnect(namespace="/live")
    assert _figures(app, live.session_id)[0] == 1
    tabs[4].disconnect(namespace="/live")
    assert _figures(app, live.session_id)[0] == 0


def test_two_hundred_random_viewer_keys_add_no_unique_viewer(
    live, socket_client, live_browser, app
):
    # given a socket without the cookie and one with it, each joining with invented keys
    app.config["JOIN_RATE_LIMIT"] = "1000 per minute"
    bare = socket_client()
    cookied = socket_client(live_browser(live.session_id))

    # when each sends 100 joins with random viewer_keys (and 100 more sockets try it too)
    for _ in range(100):
        _join(bare, live.session_id, viewer_key=uuid.uuid4().hex)
        _join(cookied, live.session_id, viewer_key=uuid.uuid4().hex)

    # then the keys decide nothing: the one cookie is the one unique viewer
    viewers_now, peak, keys = _figures(app, live.session_id)
    assert (viewers_now, peak, len(keys)) == (1, 1, 1)


def test_a_logged_in_user_in_two_tabs_and_two_browsers_counts_once(
    live, socket_client, factory, login_as, live_browser, app
):
    # given one user logged in on a phone (two tabs) and on a laptop
    user = factory.user("buyer")
    phone = live_browser(live.session_id, login_as(user))
    laptop = live_browser(live.session_id, login_as(user))
    tabs = [socket_client(phone), socket_client(phone), socket_client(laptop)]

    # when all three join
    counts = [_join(tab, live.session_id)["state"]["viewers"] for tab in tabs]

    # then one viewer, keyed by the user
    assert counts == [1, 1, 1]
    assert _figures(app, live.session_id) == (1, 1, [f"u:{user.id}"])


@pytest.mark.parametrize(
    "forged",
    [
        "0123456789abcdef0123456789abcdef",  # an id without a signature
        "0123456789abcdef0123456789abcdef.forgedsignature",
        Signer("another-secret", salt="farmlive.live.viewer")
        .sign("0123456789abcdef0123456789abcdef")
        .decode(),
        Signer("test-secret-key", salt="farmlive.live.viewer").sign("not-hex").decode(),
        "x" * 300,
    ],
)
def test_a_forged_cookie_does_not_count(live, socket_client, new_api, app, forged):
    # given a browser that made up its own viewer cookie
    browser = new_api()
    browser.client.set_cookie("farmlive_viewer", forged)

    # when it joins
    ack = _join(socket_client(browser), live.session_id)

    # then it watches uncounted, and the live page would give it a real cookie
    assert ack["ok"] is True and ack["state"]["viewers"] == 0
    assert _figures(app, live.session_id) == (0, 0, [])
    page = browser.client.get(f"/live/{live.session_id}")
    assert browser.client.get_cookie("farmlive_viewer").value != forged
    cookie = _viewer_set_cookie(page)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie


def test_the_live_page_keeps_a_valid_cookie(live, live_browser):
    browser = live_browser(live.session_id)
    first = browser.client.get_cookie("farmlive_viewer").value

    again = browser.client.get(f"/live/{live.session_id}")

    assert _viewer_set_cookie(again) == ""
    assert browser.client.get_cookie("farmlive_viewer").value == first


def test_watching_then_logging_in_stays_one_unique_viewer(
    live, socket_client, factory, live_browser, app
):
    # given a browser watching anonymously
    user = factory.user("buyer")
    browser = live_browser(live.session_id)
    anonymous = socket_client(browser)
    _join(anonymous, live.session_id)

    # when it logs in inside the buy sheet and the page reconnects its socket
    browser.login(user.email, user.password)
    anonymous.disconnect(namespace="/live")
    _join(socket_client(browser), live.session_id)

    # then the session had one unique viewer: the user
    assert _figures(app, live.session_id) == (1, 1, [f"u:{user.id}"])


def test_logging_in_where_the_user_already_watched_keeps_one_unique_viewer(
    live, socket_client, factory, login_as, live_browser, app
):
    # given a user watching on a phone, and the same person watching anonymously on a laptop
    user = factory.user("buyer")
    _join(socket_client(live_browser(live.session_id, login_as(user))), live.session_id)
    laptop = live_browser(live.session_id)
    anonymous = socket_client(laptop)
    _join(anonymous, live.session_id)
    assert _figures(app, live.session_id)[0] == 2

    # when the laptop logs in too
    laptop.login(user.email, user.password)
    anonymous.disconnect(namespace="/live")
    _join(socket_client(laptop), live.session_id)

    # then the laptop's anonymous visit was this user's: one unique viewer
    assert _figures(app, live.session_id) == (1, 2, [f"u:{user.id}"])


def test_sockets_per_address_are_bounded(live, app):
    # given at most three sockets per address
    app.config["SOCKET_CONNECTIONS_PER_ADDRESS"] = 3
    first = [_raw_socket(app, app.test_client()) for _ in range(3)]
    assert all(sio.is_connected("/live") for sio in first)

    # when a fourth connects from the same address, it is refused
    assert not _raw_socket(app, app.test_client()).is_connected("/live")

    # then a closed socket makes room again
    first[0].disconnect(namespace="/live")
    assert _raw_socket(app, app.test_client()).is_connected("/live")


def test_the_address_behind_trusted_proxies_is_the_one_bounded(live, app):
    # given one trusted proxy in front: X-Forwarded-For's last hop is the client
    app.config.update(SOCKET_CONNECTIONS_PER_ADDRESS=2, TRUSTED_PROXIES=1)

    def connect(address: str) -> bool:
        headers = {"X-Forwarded-For": f"6.6.6.6, {address}"}
        return _raw_socket(app, app.test_client(), headers).is_connected("/live")

    # then each client address has its own two sockets; the proxy's own address is no limit
    assert [connect("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert [connect("10.0.0.2") for _ in range(3)] == [True, True, False]

    # and without trusted proxies the header changes nothing: one address for all
    app.config["TRUSTED_PROXIES"] = 0
    assert [connect(f"10.0.1.{n}") for n in range(3)] == [True, True, False]


def test_joins_per_address_are_rate_limited_but_not_the_host_console(
    live, socket_client, live_browser
):
    # given three joins a minute per address
    live.host_api.client.application.config["JOIN_RATE_LIMIT"] = "3 per minute"
    viewer = socket_client(live_browser(live.session_id))
    console = socket_client(live.host_api)

    # when a fourth join comes from the same address
    acks = [_join(viewer, live.session_id) for _ in range(4)]

    # then it is refused in the API.md error shape; the host console still joins
    assert [ack["ok"] for ack in acks] == [True, True, True, False]
    assert acks[3]["error"]["code"] == "too_many_requests"
    assert set(acks[3]["error"]) == {"code", "message", "fields"}
    assert _join(console, live.session_id, console=True)["ok"] is True


def test_ratelimit_enabled_off_lifts_the_address_bounds(live, app, socket_client):
    app.config.update(
        RATELIMIT_ENABLED=False, SOCKET_CONNECTIONS_PER_ADDRESS=1, JOIN_RATE_LIMIT="1 per minute"
    )
    sockets = [socket_client() for _ in range(3)]  # the fixture asserts each one connected

    assert all(_join(sio, live.session_id)["ok"] for sio in sockets for _ in range(2))


def test_the_report_counts_people_not_sockets(live, socket_client, live_browser, factory):
    from tests.live.conftest import checkout

    # given a crowd of 60 sockets without the cookie, one browser in 5 tabs sending invented
    # keys, and a browser that watches, logs in inside the buy sheet and buys
    live.pin(live_price=6800)
    crowd = [socket_client() for _ in range(60)]
    browser = live_browser(live.session_id)
    tabs = [socket_client(browser) for _ in range(5)]
    for n, sio in enumerate(crowd + tabs):
        _join(sio, live.session_id, viewer_key=f"made-up-{n}")
    buyer = factory.user("buyer")
    shopper = live_browser(live.session_id)
    watching = socket_client(shopper)
    _join(watching, live.session_id)
    shopper.login(buyer.email, buyer.password)
    watching.disconnect(namespace="/live")
    _join(socket_client(shopper), live.session_id)
    order = checkout(shopper, live.session_id, live.variant_id).get_json()
    assert shopper.post(f"/payments/demo/{order['id']}/confirm").status_code == 200

    # when the host reads the session's report
    report = live.host_api.get(f"/reports/live-sessions/{live.session_id}").get_json()

    # then two people watched, one bought: conversion 1 / 2
    assert (report["unique_viewers"], report["peak_viewers"]) == (2, 2)
    assert (report["buyers"], report["conversion"]) == (1, 0.5)


@pytest.mark.slow
@pytest.mark.only_db("sqlite")
def test_a_real_server_bounds_sockets_per_forwarded_address(start_server):
    import socketio

    # given a server behind one trusted proxy, two sockets per client address
    server = start_server(
        RATELIMIT_ENABLED="1", TRUSTED_PROXIES="1", SOCKET_CONNECTIONS_PER_ADDRESS="2"
    )
    clients = []

    def connect(address: str) -> dict | None:
        """None when connected, else the refusal the client got."""
        refusals: list = []
        client = socketio.Client(reconnection=False)
        client.on("connect_error", refusals.append, namespace="/live")
        try:
            client.connect(
                server.url,
                namespaces=["/live"],
                headers={"X-Forwarded-For": address},
                transports=["polling"],
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            return refusals[0] if refusals else {}
        clients.append(client)
        return None

    try:
        # when a third socket comes from one address, it is refused with a clear error
        assert connect("10.0.0.1") is None and connect("10.0.0.1") is None
        refused = connect("10.0.0.1")
        assert refused["data"]["error"]["code"] == "too_many_requests"
        # then another address behind the same proxy still connects
        assert connect("10.0.0.2") is None
    finally:
        for client in clients:
            client.disconnect()
