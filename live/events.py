"""Socket.IO namespace /live: a room per session, viewers join and chat, news goes to rooms.

Handlers check `current_user` themselves (login_required does not apply to sockets), never
commit (services do), and remove the database session when they finish. Domain news from the
order service arrives through `shop.signals` after its commit and is forwarded to the rooms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import join_room, leave_room

from live import broadcast, chat, checkout, services, viewers
from live.errors import SessionNotFound
from shop import signals
from shop.errors import DomainError
from shop.extensions import db, socketio

NS = broadcast.NAMESPACE

# sid -> session ids it joined, so a dropped connection leaves every room it was counted in.
_joined: dict[str, set[int]] = {}
_joined_lock = threading.Lock()


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _handler(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into an `{error}` ack and always give the DB session back."""

    @wraps(func)
    def wrapper(*args: Any) -> Any:
        try:
            return func(*args)
        except DomainError as err:
            db.session.rollback()
            return _error(err.code, err.message)
        finally:
            db.session.remove()

    return wrapper


def _session_id(data: Any) -> int | None:
    raw = data.get("session_id") if isinstance(data, dict) else None
    if isinstance(raw, bool):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        return None
    return value if 0 < value < 2**31 else None  # no row has a larger id; the query would fail


def _viewer_key(data: dict) -> str:
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    raw = str(data.get("viewer_key") or "")[:64]
    key = "".join(ch for ch in raw if ch.isalnum() or ch in "-_")
    return f"anon:{key or request.sid}"


@socketio.on("connect", namespace=NS)
def on_connect(auth: Any = None) -> bool:
    """Anyone may watch; the origin check happened in Engine.IO (SOCKETIO_ALLOWED_ORIGINS)."""
    db.session.remove()
    return True


@socketio.on("join", namespace=NS)
@_handler
def on_join(data: Any) -> dict:
    session_id = _session_id(data)
    if session_id is None:
        return _error("invalid", "session_id is required.")
    live = services.get_session(session_id)
    app = current_app._get_current_object()
    join_room(broadcast.room(session_id))
    if data.get("console") and services.can_host(current_user, live):
        # the host console listens to the room without counting as a viewer
        state = {
            "status": live.status,
            "pinned": services.pin_data(services.current_pin(session_id)),
            "viewers": viewers.count(session_id),
        }
        return {"ok": True, "state": state}
    with _joined_lock:
        first = session_id not in _joined.setdefault(request.sid, set())
        _joined[request.sid].add(session_id)
    store = viewers.counter()
    count = store.add(session_id, request.sid) if first else store.count(session_id)
    state = {
        "status": live.status,
        "pinned": services.pin_data(services.current_pin(session_id)),
        "viewers": count,
    }
    user_id = current_user.id if current_user.is_authenticated else None
    if live.status != "ended":
        viewers.record_visit(session_id, _viewer_key(data), user_id)
        viewers.record_count(session_id, count)
    viewers.ensure_sampler(app)
    viewers.announce(app, session_id)
    return {"ok": True, "state": state}


def _leave(sid: str, session_id: int) -> None:
    with _joined_lock:
        rooms = _joined.get(sid)
        if not rooms or session_id not in rooms:
            return
        rooms.discard(session_id)
        if not rooms:
            _joined.pop(sid, None)
    viewers.counter().remove(session_id, sid)
    viewers.announce(current_app._get_current_object(), session_id)


@socketio.on("leave", namespace=NS)
@_handler
def on_leave(data: Any) -> dict:
    session_id = _session_id(data)
    if session_id is None:
        return _error("invalid", "session_id is required.")
    leave_room(broadcast.room(session_id))
    _leave(request.sid, session_id)
    return {"ok": True}


@socketio.on("disconnect", namespace=NS)
@_handler
def on_disconnect(reason: Any = None) -> None:
    with _joined_lock:
        rooms = list(_joined.get(request.sid, ()))
    for session_id in rooms:
        _leave(request.sid, session_id)


@socketio.on("message", namespace=NS)
@_handler
def on_message(data: Any) -> dict:
    """Chat or a question from a logged-in viewer; the broadcast follows the service's commit."""
    if not current_user.is_authenticated:
        return _error("unauthorized", "Log in to chat.")
    session_id = _session_id(data)
    if session_id is None or not isinstance(data.get("body"), str):
        return _error("invalid", "session_id and body are required.")
    kind = data.get("kind") or "chat"
    user = current_user._get_current_object()
    message = chat.post_message(user, session_id, body=data["body"], kind=kind)
    return {"ok": True, "id": message.id}


# --- news from the order service, forwarded after its commit ----------------------------------


@signals.stock_changed.connect
def _on_stock_changed(app, variant_ids: list[int] | None = None, **_: Any) -> None:
    if variant_ids:
        checkout.sold_out_memo(app).forget(list(variant_ids))
        broadcast.stock_news.changed(app, list(variant_ids))


@signals.order_paid.connect
def _on_order_paid(app, order_id: int | None = None, **_: Any) -> None:
    from live.sales import sale_news

    with app.app_context():
        news = sale_news(order_id) if order_id else None
    if news is not None:
        broadcast.emit("sale", news, news["session_id"])


__all__ = ["SessionNotFound", "on_join", "on_leave", "on_message"]
