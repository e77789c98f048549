"""Stand-in for a server process in the viewer-count crash test: it counts viewers through the
app's Redis counter and keeps vouching for them until the test kills it.

Usage: python -m tests.live.viewer_process REDIS_URL PREFIX STALE_SECONDS SESSION_ID VIEWERS
"""

from __future__ import annotations

import sys
import time

from live import viewers
from shop import create_app


def main(redis_url: str, prefix: str, stale: str, session_id: str, count: str) -> None:
    app = create_app(
        "config.TestConfig",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        REDIS_URL=redis_url,
        SOCKETIO_CHANNEL=prefix,
        VIEWER_STALE_SECONDS=float(stale),
    )
    store = viewers.counter(app)
    for number in range(int(count)):
        store.add(int(session_id), f"a:elsewhere-{number}", f"sid-elsewhere-{number}")
    print("ready", flush=True)
    while True:  # the heartbeat runs in its own thread; this process just stays alive
        time.sleep(60)


if __name__ == "__main__":
    main(*sys.argv[1:])
