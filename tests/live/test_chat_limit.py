"""The chat pace is one atomic limiter shared by the API and the socket: of many messages one
user sends at the same instant, exactly one is stored, in this process's memory or in Redis
across server processes."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
import requests
import socketio as socketio_client

from tests.conftest import ApiClient

BODY = "抢个沙发"


@pytest.fixture(params=["memory", "redis"])
def storage(request, app) -> str:
    """The app's rate-limit storage: this process's memory, or Redis (before its first use)."""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        app.config.update(
            RATELIMIT_STORAGE_URI=redis_url, SOCKETIO_CHANNEL=f"chat-test-{uuid.uuid4().hex}"
        )
    app.extensions.pop("farmlive.live_throttle", None)
    return request.param


def _tabs(app, user_api: ApiClient, n: int) -> list[ApiClient]:
    """`n` more clients of the same logged-in browser (its session cookie), like tabs."""
    cookie = user_api.client.get_cookie("session")
    tabs = []
    for _ in range(n):
        tab = ApiClient(app.test_client())
        tab.client.set_cookie("session", cookie.value)
        tab._token = user_api.csrf()
        tabs.append(tab)
    return tabs


def _at_once(actions) -> list:
    """Run every action in its own thread, released together; their results in order."""
    gate = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(index: int, action) -> None:
        gate.wait()
        results[index] = action()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _stored(app, session_id: int) -> int:
    from live.models import Message
    from shop.extensions import db

    with app.app_context():
        return db.session.query(Message).filter_by(session_id=session_id).count()


def test_ten_parallel_posts_by_one_user_store_one(live, factory, login_as, app, storage):
    # given one user with ten tabs
    user_api = login_as(factory.user("buyer"))
    tabs = _tabs(app, user_api, 10)
    path = f"/live-sessions/{live.session_id}/messages"

    # when every tab posts at the same instant
    responses = _at_once([lambda tab=tab: tab.post(path, {"body": BODY}) for tab in tabs])

    # then one message is stored and nine are refused as too many
    assert Counter(r.status_code for r in responses) == {201: 1, 429: 9}
    assert {r.get_json()["error"]["code"] for r in responses if r.status_code == 429} == {
        "too_many_messages"
    }
    assert _stored(app, live.session_id) == 1


def test_http_and_socket_posts_at_once_store_one(
    live, factory, login_as, socket_client, app, storage
):
    # given one user with five API tabs and five sockets
    user_api = login_as(factory.user("buyer"))
    tabs = _tabs(app, user_api, 5)
    sockets = [socket_client(user_api) for _ in range(5)]
    path = f"/live-sessions/{live.session_id}/messages"
    payload = {"session_id": live.session_id, "body": BODY}

    # when all ten send at once
    results = _at_once(
        [lambda tab=tab: tab.post(path, {"body": BODY}).status_code for tab in tabs]
        + [
            lambda sio=sio: sio.emit("message", payload, namespace="/live", callback=True)
            for sio in sockets
        ]
    )

    # then exactly one of them got through
    passed = [r for r in results if r == 201 or (isinstance(r, dict) and r.get("ok"))]
    refused = [r for r in results[5:] if isinstance(r, dict) and not r.get("ok")]
    assert len(passed) == 1, results
    assert all(r["error"]["code"] == "too_many_messages" for r in refused)
    assert _stored(app, live.session_id) == 1


def test_one_message_per_window_then_the_next(live, factory, login_as, app, storage):
    # given one message per second
    app.config["CHAT_RATE_LIMIT_SECONDS"] = 1
    user_api = login_as(factory.user("buyer"))
    path = f"/live-sessions/{live.session_id}/messages"

    # then a second one within the second is refused, one after it passes
    assert user_api.post(path, {"body": "一"}).status_code == 201
    assert user_api.post(path, {"body": "二"}).status_code == 429
    time.sleep(1.1)
    assert user_api.post(path, {"body": "三"}).status_code == 201


def test_each_user_has_their_own_pace(live, factory, login_as, app, storage):
    path = f"/live-sessions/{live.session_id}/messages"
    users = [login_as(factory.user("buyer")) for _ in range(3)]

    assert [u.post(path, {"body": BODY}).status_code for u in users] == [201, 201, 201]


@pytest.mark.slow
@pytest.mark.only_db("postgresql")
def test_posts_through_two_processes_store_one(start_server, live, factory, redis_url):
    # given two server processes sharing Redis, and one user logged in on both
    env = {"REDIS_URL": redis_url, "SOCKETIO_CHANNEL": f"chat-test-{uuid.uuid4().hex}"}
    servers = [start_server(**env), start_server(**env)]
    user = factory.user("buyer")
    http = requests.Session()
    token = http.get(servers[0].url + "/api/v1/auth/csrf", timeout=10).json()["csrf_token"]
    login = http.post(
        servers[0].url + "/api/v1/auth/login",
        json={"email": user.email, "password": user.password},
        headers={"X-CSRFToken": token},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token = http.get(servers[0].url + "/api/v1/auth/csrf", timeout=10).json()["csrf_token"]
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    sockets = []
    for server in servers:
        sio = socketio_client.Client(reconnection=False)
        sio.connect(server.url, namespaces=["/live"], headers={"Cookie": cookie}, wait_timeout=10)
        sockets.append(sio)
    path = f"/api/v1/live-sessions/{live.session_id}/messages"

    def post(url: str) -> int:
        response = http.post(url + path, json={"body": BODY}, headers={"X-CSRFToken": token})
        return response.status_code

    def say(sio) -> dict:
        payload = {"session_id": live.session_id, "body": BODY}
        return sio.call("message", payload, namespace="/live", timeout=10)

    try:
        # when eight posts and two socket messages go out at once, split over both processes
        results = _at_once(
            [lambda s=s: post(s.url) for s in servers * 4] + [lambda s=s: say(s) for s in sockets]
        )
    finally:
        for sio in sockets:
            sio.disconnect()

    # then exactly one was stored
    passed = [r for r in results if r == 201 or (isinstance(r, dict) and r.get("ok"))]
    assert len(passed) == 1, results
    assert Counter(r for r in results[:8] if r != 201) in (Counter({429: 8}), Counter({429: 7}))
    assert _stored(live.host_api.client.application, live.session_id) == 1
