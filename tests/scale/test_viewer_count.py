"""Viewer counts across two production server processes when one of them is killed: the host
stops seeing the dead process's viewers within VIEWER_STALE_SECONDS, without any disconnects."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.scale.conftest import HttpUser, Viewer, scale_redis

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
    watching = [Viewer(survivor.url, session_id) for _ in range(2)]
    lost = [Viewer(doomed.url, session_id) for _ in range(3)]
    try:
        for viewer in watching + lost:
            assert viewer.join()["ok"] is True
        assert viewers_seen(survivor, session_id) == 5

        worker = doomed.worker_pid()
        assert worker is not None, "no gunicorn worker to kill"
        os.kill(worker, signal.SIGKILL)  # its viewers' sockets die with it, no disconnect runs

        assert wait_for_count(survivor, session_id, 2) == 2
        left = watching.pop()
        assert left.client.call(
            "leave", {"session_id": session_id}, namespace="/live", timeout=20
        ) == {"ok": True}
        assert viewers_seen(survivor, session_id) == 1  # a clean leave counts at once
        left.close()
    finally:
        for viewer in watching + lost:
            viewer.close()
