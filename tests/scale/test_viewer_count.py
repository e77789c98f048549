"""Viewer counts across two production server processes when one of them is killed: the host
stops seeing the dead process's viewers within VIEWER_STALE_SECONDS, without any disconnects;
a viewer counts once per browser, whichever processes its tabs reach."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.scale.conftest import HttpUser, Viewer, browser_cookie, scale_redis

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow]

STALE = "3"  # seconds; production's default is 30


def viewers_seen(server, session_id: int) -> int:
    return HttpUser(server.url).get(f"/live-sessions/{session_id}").json()["viewers"]


def wait_for_count(server, session_id: int, expected: int, timeout: float = 30.0) -> int:
    """Poll the session's viewer count until it is `expected` or `timeout` passes; return it."""
    deadline = time.monotonic() + timeout
    seen = viewers_seen(server, session_id)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = viewers_seen(server, session_id)
    return seen


def test_viewers_of_a_killed_process_leave_the_count(gunicorn, redis_url, live_stage):
    env = {
        "REDIS_URL": scale_redis(redis_url),
        "SOCKETIO_CHANNEL": f"scale-{uuid.uuid4().hex}",
        "VIEWER_STALE_SECONDS": STALE,
    }
    survivor, doomed = gunicorn(**env), gunicorn(**env)
    session_id = live_stage["session_id"]
    # two browsers on the survivor; three on the doomed process, one of them (shared) also
    # in a second tab on the survivor; and a crowd of sockets without a cookie on both
    shared = browser_cookie(doomed.url, session_id)
    watching = [Viewer(survivor.url, session_id, browser_cookie(survivor.url, session_id))]
    watching += [Viewer(survivor.url, session_id, browser_cookie(survivor.url, session_id))]
    watching += [Viewer(survivor.url, session_id, shared)]
    lost = [Viewer(doomed.url, session_id, browser_cookie(doomed.url, session_id))]
    lost += [Viewer(doomed.url, session_id, browser_cookie(doomed.url, session_id))]
    lost += [Viewer(doomed.url, session_id, shared)]
    crowd = [Viewer(server.url, session_id) for server in (survivor, doomed) for _ in range(10)]
    try:
        for viewer in watching + lost + crowd:
            assert viewer.join()["ok"] is True
        assert viewers_seen(survivor, session_id) == 5

        worker = doomed.worker_pid()
        assert worker is not None, "no gunicorn worker to kill"
        os.kill(worker, signal.SIGKILL)  # its viewers' sockets die with it, no disconnect runs

        # the shared browser still watches through the survivor
        assert wait_for_count(survivor, session_id, 3) == 3
        time.sleep(float(STALE) * 1.5)
        assert viewers_seen(survivor, session_id) == 3
        left = watching.pop(0)
        assert left.client.call(
            "leave", {"session_id": session_id}, namespace="/live", timeout=20
        ) == {"ok": True}
        assert viewers_seen(survivor, session_id) == 2  # a clean leave counts at once
        left.close()
    finally:
        for viewer in watching + lost + crowd:
            viewer.close()
