"""Redis that fails loudly (refused) or silently (a black hole: connections open, nothing
answers) under two production server processes: pages, logins and checkout go on, requests
never wait out Redis, /healthz says what is wrong, and once Redis is back the news between
processes and the shared viewer counts come back by themselves.

The faults are played with a TCP proxy between the servers and the machine's Redis.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.scale.conftest import ADDRESS, HttpUser, Viewer, scale_redis
from tests.scale.test_outage import wait_until

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow]

CHECK_SECONDS = 1.0  # REDIS_CHECK_SECONDS for these servers; production's default is 5
PROMPT = 5.0  # seconds: a request slower than this during a fault hangs on Redis (it was 10 s+)


def start_pair(gunicorn, redis_url: str, **extra: str):
    """Two server processes sharing one Redis (the proxied one) and a fresh channel."""
    env = {
        "REDIS_URL": redis_url,
        "SOCKETIO_CHANNEL": f"faults-{uuid.uuid4().hex}",
        "REDIS_CHECK_SECONDS": str(CHECK_SECONDS),
        "VIEWER_STALE_SECONDS": "3",
        **extra,
    }
    return gunicorn(**env), gunicorn(**env)


def promptly(method: str, user: HttpUser | None, url: str, **kwargs) -> requests.Response:
    """One request that must answer within PROMPT seconds, whatever Redis does."""
    http = user.http if user is not None else requests
    if user is not None and method != "get":
        kwargs["headers"] = {"X-CSRFToken": user.csrf, **kwargs.get("headers", {})}
    try:
        return http.request(method, url, timeout=PROMPT, **kwargs)
    except requests.Timeout:
        pytest.fail(f"{method.upper()} {url} hung for more than {PROMPT} s")


def pin(host: HttpUser, session_id: int, product_id: int) -> requests.Response:
    path = host.url(f"/live-sessions/{session_id}/pins")
    return promptly("post", host, path, json={"product_id": product_id})


def visitor_on(base_url: str) -> HttpUser:
    """A new browser with its CSRF token, fetched promptly."""
    user = HttpUser(base_url)
    user.csrf = promptly("get", user, user.url("/auth/csrf")).json()["csrf_token"]
    return user


def log_in_promptly(base_url: str, email: str, password: str) -> HttpUser:
    user = visitor_on(base_url)
    answer = promptly(
        "post", user, user.url("/auth/login"), json={"email": email, "password": password}
    )
    assert answer.status_code == 200, answer.text
    user.csrf = promptly("get", user, user.url("/auth/csrf")).json()["csrf_token"]
    return user


def viewers_on(base_url: str, session_id: int) -> int | None:
    answer = requests.get(f"{base_url}/api/v1/live-sessions/{session_id}", timeout=PROMPT)
    return answer.json()["viewers"] if answer.status_code == 200 else None


def test_a_silent_redis_is_noticed_and_news_between_processes_comes_back(
    gunicorn, tcp_proxy, redis_url, live_stage
):
    proxy, proxied_url = tcp_proxy(scale_redis(redis_url))
    first, second = start_pair(gunicorn, proxied_url)
    session_id, product_id = live_stage["session_id"], live_stage["product"]["id"]
    host = HttpUser(first.url).login(live_stage["host"].email, live_stage["host"].password)
    chatters = [HttpUser(second.url).login(b.email, b.password) for b in live_stage["buyers"][:3]]
    here, there = Viewer(first.url, session_id), Viewer(second.url, session_id)
    try:
        assert here.join()["ok"] is True and there.join()["ok"] is True
        assert pin(host, session_id, product_id).status_code == 201
        assert there.wait_for_pin(product_id) is not None  # through Redis, before the fault
        here.pins.clear()

        proxy.blackhole()  # Redis goes silent: no error, no answer
        time.sleep(CHECK_SECONDS * 4)

        for server in (first, second):
            health = promptly("get", None, server.url + "/healthz")
            assert health.status_code == 503, health.text
            assert health.json()["checks"]["socketio_listener"] != "ok", health.text
        for chatter in chatters:  # each change is made, and answered, without waiting on Redis
            assert pin(host, session_id, product_id).status_code == 201
            path = chatter.url(f"/live-sessions/{session_id}/messages")
            posted = promptly("post", chatter, path, json={"body": "还有吗？", "kind": "chat"})
            assert posted.status_code == 201, posted.text
        assert here.wait_for_pin(product_id) is not None  # the process's own viewers still hear
        assert first.proc.poll() is None and second.proc.poll() is None

        # Redis answers again, but the connections from before stay silent for good (the
        # network forgot them): only a process that checks its connection hears again.
        there.pins.clear()
        proxy.restore(silent_leftovers=True)

        arrived = wait_until(
            lambda: (
                pin(host, session_id, product_id).status_code == 201
                and there.wait_for_pin(product_id, timeout=1.0)
            ),
            attempts=20,
        )
        assert arrived is not None, "pins made on one process never reached the other again"
        assert arrived["session_id"] == session_id
        assert wait_until(lambda: first.health()[0] == 200 and second.health()[0] == 200, 20)
    finally:
        here.close()
        there.close()


@pytest.mark.parametrize("fault", ["cut", "blackhole"])
def test_without_redis_new_visitors_watch_register_log_in_and_buy(
    fault, gunicorn, tcp_proxy, redis_url, live_stage
):
    proxy, proxied_url = tcp_proxy(scale_redis(redis_url))
    first, second = start_pair(gunicorn, proxied_url, RATELIMIT_ENABLED="1")  # limits in Redis
    stage = live_stage
    session_id, variant_id = stage["session_id"], stage["product"]["variant_ids"][0]
    host = HttpUser(first.url).login(stage["host"].email, stage["host"].password)
    assert pin(host, session_id, stage["product"]["id"]).status_code == 201
    page = requests.get(f"{first.url}/live/{session_id}", timeout=PROMPT)
    early = Viewer(
        first.url, session_id, cookie=f"farmlive_viewer={page.cookies['farmlive_viewer']}"
    )
    newcomer = None
    try:
        assert early.join()["ok"] is True
        assert wait_until(lambda: viewers_on(second.url, session_id) == 1, 20)

        getattr(proxy, fault)()  # refused, or silent

        watch = promptly("get", None, f"{second.url}/live/{session_id}")
        assert watch.status_code == 200, watch.text
        live = promptly("get", None, f"{second.url}/api/v1/live-sessions/{session_id}")
        assert live.status_code == 200, live.text
        assert isinstance(live.json()["viewers"], int)
        cookie = f"farmlive_viewer={watch.cookies['farmlive_viewer']}"
        newcomer = Viewer(second.url, session_id, cookie=cookie)
        ack = newcomer.join()
        assert ack["ok"] is True, ack  # not "unavailable"
        assert isinstance(ack["state"]["viewers"], int)

        email, password = f"new-{uuid.uuid4().hex[:8]}@farmlive.test", "a-long-passphrase-1"
        visitor = visitor_on(second.url)
        registered = promptly(
            "post",
            visitor,
            visitor.url("/auth/register"),
            json={"email": email, "password": password, "name": "新来的"},
        )
        assert registered.status_code == 201, registered.text
        buyer = log_in_promptly(second.url, email, password)
        order = promptly(
            "post",
            buyer,
            buyer.url(f"/live-sessions/{session_id}/checkout"),
            json={"variant_id": variant_id, "quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert order.status_code == 201, order.text
        cart = promptly(
            "post",
            buyer,
            buyer.url("/orders"),
            json={"items": [{"variant_id": variant_id, "quantity": 1}], "address": ADDRESS},
        )
        assert cart.status_code == 201, cart.text

        console_host = log_in_promptly(second.url, stage["host"].email, stage["host"].password)
        console = promptly("get", console_host, f"{second.url}/host/live/{session_id}")
        assert console.status_code == 200, console.text
        assert first.proc.poll() is None and second.proc.poll() is None

        proxy.restore()

        # both viewers, one on each process, are counted by both again
        assert wait_until(
            lambda: viewers_on(first.url, session_id) == viewers_on(second.url, session_id) == 2,
            40,
        ), (viewers_on(first.url, session_id), viewers_on(second.url, session_id))
    finally:
        early.close()
        if newcomer is not None:
            newcomer.close()
