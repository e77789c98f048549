"""Room names and the one emit helper: every broadcast goes to a session's room on /live.

Callers emit only after the commit that caused the news. With REDIS_URL set, Flask-SocketIO
publishes through the message queue, so viewers connected to any server process receive it;
while Redis is unavailable an emit reaches this process's viewers only, never fails its caller
and holds it up for REDIS_TIMEOUT_SECONDS at most (shop/redis_link.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

from shop.extensions import socketio

log = logging.getLogger(__name__)

NAMESPACE = "/live"


def room(session_id: int) -> str:
    return f"live-session-{session_id}"


#: Called with (event, data) for every piece of news to a room, this process's own (from
#: `emit`) and, with Redis, the other processes' (`heard`): live.rooms keeps its rooms current.
_listeners: list[Callable[[str, Any], None]] = []


def on_news(listener: Callable[[str, Any], None]) -> None:
    _listeners.append(listener)


def heard(event: str, data: Any) -> None:
    """News for the rooms, from here or from another process."""
    for listener in list(_listeners):
        try:
            listener(event, data)
        except Exception:  # a listener never stops the news
            log.exception("a news listener failed on %r", event)


def emit(event: str, data: dict[str, Any], session_id: int) -> None:
    """Send `event` to everyone watching `session_id`."""
    heard(event, data)
    socketio.emit(event, data, to=room(session_id), namespace=NAMESPACE)


def listen_to_other_processes() -> None:
    """Have the Socket.IO queue (with Redis) pass the other processes' news to `heard`."""
    manager = getattr(socketio.server, "manager", None)
    listeners = getattr(manager, "news_listeners", None)
    if listeners is not None and _from_queue not in listeners:
        listeners.append(_from_queue)


def _from_queue(event: str, data: Any, namespace: str | None) -> None:
    if namespace == NAMESPACE:
        heard(event, data)


class StockNews:
    """Coalesces stock news: at most one `stock` event per variant per interval, latest value.

    A flash sale changes one variant's stock hundreds of times a second; sending each change to
    every viewer costs more than the checkouts themselves. Changes are collected and, after
    STOCK_BROADCAST_INTERVAL seconds, the current stock of every changed variant is read once and
    sent. With an interval of 0 the news goes out at once (tests use that).
    """

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._scheduled = False
        self._lock = threading.Lock()

    def changed(self, app: Flask, variant_ids: list[int]) -> None:
        interval = float(app.config.get("STOCK_BROADCAST_INTERVAL", 0.5))
        if interval <= 0:
            self._send(app, set(variant_ids))
            return
        with self._lock:
            self._pending.update(variant_ids)
            if self._scheduled:
                return
            self._scheduled = True
        socketio.start_background_task(self._send_later, app, interval)

    def _send_later(self, app: Flask, interval: float) -> None:
        socketio.sleep(interval)
        with self._lock:
            variant_ids, self._pending, self._scheduled = self._pending, set(), False
        try:
            self._send(app, variant_ids)
        except Exception:  # a lost update is repaired by the next change or a re-join
            log.exception("stock broadcast failed")

    @staticmethod
    def _send(app: Flask, variant_ids: set[int]) -> None:
        from live.services import pinned_variant_sessions
        from shop.budgets import background

        if not variant_ids:
            return
        with background(app):
            rows = pinned_variant_sessions(sorted(variant_ids))
        for session_id, variant_id, stock in rows:
            payload = {"session_id": session_id, "variant_id": variant_id, "stock": stock}
            emit("stock", payload, session_id)


stock_news = StockNews()
