"""Room names and the one emit helper: every broadcast goes to a session's room on /live.

Callers emit only after the commit that caused the news. With REDIS_URL set, Flask-SocketIO
publishes through the message queue, so viewers connected to any server process receive it.
"""

from __future__ import annotations

from typing import Any

from shop.extensions import socketio

NAMESPACE = "/live"


def room(session_id: int) -> str:
    return f"live-session-{session_id}"


def emit(event: str, data: dict[str, Any], session_id: int) -> None:
    """Send `event` to everyone watching `session_id`."""
    socketio.emit(event, data, to=room(session_id), namespace=NAMESPACE)
