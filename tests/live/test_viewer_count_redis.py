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
    assert here.add(SESSION, "here-1") == 4
    assert here.add(SESSION, "here-2") == 5

    other.send_signal(signal.SIGKILL)  # no disconnects, no goodbye
    other.wait(10)

    assert wait_for(lambda: here.count(SESSION) == 2), here.count(SESSION)
    time.sleep(STALE * 1.5)  # the live process keeps vouching for its own viewers
    assert here.count(SESSION) == 2

    assert here.remove(SESSION, "here-1") == 1  # a clean leave counts at once
    assert here.count(SESSION) == 1
    assert here.remove(SESSION, "here-2") == 0


def test_viewers_come_back_after_redis_loses_them(here, redis_url, prefix):
    here.add(SESSION, "here-1")
    here.add(SESSION, "here-2")

    redis.Redis.from_url(redis_url).delete(f"{prefix}:live:{SESSION}:viewers")  # a restart

    assert wait_for(lambda: here.count(SESSION) == 2), here.count(SESSION)
    here.remove(SESSION, "here-1")
    here.remove(SESSION, "here-2")
