"""Viewer counts shared through Redis by several server processes: a process that dies without
disconnecting its viewers stops inflating the count the host sees within VIEWER_STALE_SECONDS,
while a clean leave counts at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis

from live import viewers
from shop import create_app
from tests.conftest import ROOT

STALE = 3.0  # seconds; production's default is 30
SESSION = 7


@pytest.fixture
def prefix() -> str:
    return f"farmlive-test-viewers-{uuid.uuid4().hex}"


@pytest.fixture
def here(redis_url: str, prefix: str) -> viewers.RedisCounter:
    """The counter of the server process the test plays itself. Built directly: an app made
    with REDIS_URL would switch the process-wide Socket.IO server to the Redis queue, which the
    other tests' Socket.IO test clients cannot use."""
    create_app("config.TestConfig", SQLALCHEMY_DATABASE_URI="sqlite://")  # Socket.IO, threading
    return viewers.RedisCounter(redis_url, prefix, stale_seconds=STALE)


@pytest.fixture
def other_process(redis_url: str, prefix: str):
    """other_process(n) → a second process (really one) that counts `n` viewers of SESSION."""
    procs: list[subprocess.Popen] = []

    def _start(n: int) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.live.viewer_process"]
            + [redis_url, prefix, str(STALE), str(SESSION), str(n)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield _start
    for proc in procs:
        proc.kill()
        proc.wait(10)


def wait_for(check, timeout: float = 20.0):
    """Poll `check` until it is truthy or `timeout` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(0.1)
        result = check()
    return result


def test_a_killed_process_viewers_leave_the_count(here, other_process):
    other = other_process(3)
    assert here.add(SESSION, "a:here-1", "sid-1") == 4
    assert here.add(SESSION, "a:here-2", "sid-2") == 5

    other.send_signal(signal.SIGKILL)  # no disconnects, no goodbye
    other.wait(10)

    assert wait_for(lambda: here.count(SESSION) == 2), here.count(SESSION)
    time.sleep(STALE * 1.5)  # the live process keeps vouching for its own viewers
    assert here.count(SESSION) == 2

    assert here.remove(SESSION, "a:here-1", "sid-1") == 1  # a clean leave counts at once
    assert here.count(SESSION) == 1
    assert here.remove(SESSION, "a:here-2", "sid-2") == 0


def test_viewers_come_back_after_redis_loses_them(here, redis_url, prefix):
    here.add(SESSION, "a:here-1", "sid-1")
    here.add(SESSION, "a:here-2", "sid-2")

    base = f"{prefix}:live:{SESSION}"
    redis.Redis.from_url(redis_url).delete(f"{base}:viewer-seats", f"{base}:viewer-ids")

    assert wait_for(lambda: here.count(SESSION) == 2), here.count(SESSION)
    here.remove(SESSION, "a:here-1", "sid-1")
    here.remove(SESSION, "a:here-2", "sid-2")


def test_the_tabs_of_one_viewer_count_once_until_the_last_one_leaves(here):
    # given one browser in three tabs and one logged-in user in two
    counts = [here.add(SESSION, "a:browser", f"tab-{n}") for n in range(3)]
    counts += [here.add(SESSION, "u:7", f"user-tab-{n}") for n in range(2)]

    # then two viewers, whichever tab closes, until a viewer's last tab closes
    assert counts == [1, 1, 1, 2, 2]
    assert here.remove(SESSION, "a:browser", "tab-0") == 2
    assert here.remove(SESSION, "a:browser", "tab-1") == 2
    assert here.remove(SESSION, "a:browser", "tab-2") == 1
    assert here.remove(SESSION, "u:7", "user-tab-0") == 1
    assert here.remove(SESSION, "u:7", "user-tab-1") == 0


def test_one_viewer_on_two_processes_counts_once_and_stays_when_one_dies(here, other_process):
    # given a viewer whose tabs reach two processes (a:elsewhere-0 is the other's first viewer)
    other = other_process(2)
    assert here.add(SESSION, "a:elsewhere-0", "here-tab") == 2

    # when the other process dies without a goodbye
    other.send_signal(signal.SIGKILL)
    other.wait(10)

    # then only its other viewer leaves; the shared one is still vouched for here
    assert wait_for(lambda: here.count(SESSION) == 1), here.count(SESSION)
    time.sleep(STALE * 1.5)
    assert here.count(SESSION) == 1
    assert here.remove(SESSION, "a:elsewhere-0", "here-tab") == 0


def test_a_clean_leave_on_one_process_keeps_the_viewer_seated_on_another(here, redis_url, prefix):
    # given the same viewer on two processes (a second counter on the same Redis and prefix)
    there = viewers.RedisCounter(redis_url, prefix, stale_seconds=STALE)
    here.add(SESSION, "u:9", "here-tab")
    assert there.add(SESSION, "u:9", "there-tab") == 1

    # when it closes its tab on one of them, it still watches on the other
    assert here.remove(SESSION, "u:9", "here-tab") == 1
    assert there.remove(SESSION, "u:9", "there-tab") == 0


def test_while_redis_is_silent_counts_are_this_process_own_then_shared_again(
    here, redis_url, prefix
):
    # given a counter whose Redis goes through a proxy, and a viewer counted elsewhere
    from urllib.parse import urlsplit

    from tests.scale.tcp_proxy import TcpProxy

    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379).start()
    proxied = parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    quiet = viewers.RedisCounter(proxied, prefix, stale_seconds=STALE, timeout=0.5, retry_after=1)
    try:
        assert here.add(SESSION, "u:elsewhere", "there-tab") == 1

        # when Redis goes silent, joins neither fail nor wait: the count is this process's own
        proxy.blackhole()
        started = time.monotonic()
        assert quiet.add(SESSION, "u:1", "tab-1") == 1
        assert quiet.add(SESSION, "u:2", "tab-2") == 2
        assert quiet.count(SESSION) == 2
        assert time.monotonic() - started < 1.5  # one timeout, then Redis is left alone

        # then, once Redis answers, its heartbeat puts its viewers back and counts are shared
        proxy.restore()
        assert wait_for(lambda: quiet.count(SESSION) == 3), quiet.count(SESSION)
        assert here.count(SESSION) == 3
    finally:
        proxy.restore()
        for sid, who in (("tab-1", "u:1"), ("tab-2", "u:2")):
            quiet.remove(SESSION, who, sid)
        here.remove(SESSION, "u:elsewhere", "there-tab")
        proxy.stop()
