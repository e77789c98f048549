"""Socket.IO namespace /live: a room per session, viewers join and chat, news goes to rooms.

Handlers check `current_user` themselves (login_required does not apply to sockets) and never
commit (services do). `socket_event` loads every payload with its schema first (anything else
gets an `{ok: false, error}` ack in API.md's error shape, never an exception) and gives the
database session back. A joining socket counts under its viewer identity (`live.identity`), or
not at all. Domain news from the order service arrives through `shop.signals` after its commit
and is forwarded to the rooms.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room, leave_room

from live import broadcast, chat, checkout, identity, services, throttle, viewers
from live.errors import SessionNotFound, TooManyRequests
from live.schemas import JoinEventSchema, LeaveEventSchema, MessageEventSchema
from shop import signals
from shop.accounts import require_user
from shop.extensions import socketio
from shop.sockets import error_ack, socket_event

NS = broadcast.NAMESPACE

# sid -> {session id: the identity it counts under there (None: watching, not counted)}, so a
# dropped connection leaves every room it joined and un-counts exactly what it counted.
_joined: dict[str, dict[int, str | None]] = {}
_joined_lock = threading.Lock()


@socketio.on("connect", namespace=NS)
def on_connect(auth: Any = None) -> bool:
    """Anyone may watch (Engine.IO checked the origin), but one client address holds at most
    SOCKET_CONNECTIONS_PER_ADDRESS sockets in this process."""
    if not throttle.open_socket(request.sid, identity.client_address()):
        refused = TooManyRequests()
        raise ConnectionRefusedError(refused.message, {"error": error_ack(refused)["error"]})
    return True


@socketio.on("join", namespace=NS)
@socket_event(JoinEventSchema())
def on_join(data: dict) -> dict:
    """Watch a session: its room's news, counted once per viewer identity (or not at all)."""
    session_id = data["session_id"]
    if data["console"]:
        live = services.get_session(session_id)
        if services.can_host(current_user, live):
            # the host console listens to the room without counting as a viewer, and is never
            # refused because the viewers behind its office's address joined too often
            join_room(broadcast.room(session_id))
            return {"ok": True, "state": _state(live, viewers.count(session_id))}
    if not throttle.allow_join(identity.client_address()):
        raise TooManyRequests()
    live = services.get_session(session_id)
    app = current_app._get_current_object()
    join_room(broadcast.room(session_id))
    who, browser = identity.viewer_identities()
    with _joined_lock:
        rooms = _joined.setdefault(request.sid, {})
        first = session_id not in rooms
        if first:
            rooms[session_id] = who
        else:
            who = rooms[session_id]  # a second join of the same socket changes nothing
    store = viewers.counter()
    counted = first and who is not None
    count = store.add(session_id, who, request.sid) if counted else store.count(session_id)
    if counted and live.status != "ended":
        user_id = current_user.id if current_user.is_authenticated else None
        viewers.record_visit(session_id, who, user_id, browser_key=browser)
        viewers.record_count(session_id, count)
    viewers.ensure_sampler(app)
    if counted:
        viewers.announce(app, session_id)
    return {"ok": True, "state": _state(live, count)}


def _state(live, count: int) -> dict:
    return {
        "status": live.status,
        "pinned": services.pin_data(services.current_pin(live.id)),
        "viewers": count,
    }


def _leave(sid: str, session_id: int) -> None:
    with _joined_lock:
        rooms = _joined.get(sid)
        if not rooms or session_id not in rooms:
            return
        who = rooms.pop(session_id)
        if not rooms:
            _joined.pop(sid, None)
    if who is not None:
        viewers.counter().remove(session_id, who, sid)
        viewers.announce(current_app._get_current_object(), session_id)


@socketio.on("leave", namespace=NS)
@socket_event(LeaveEventSchema())
def on_leave(data: dict) -> dict:
    session_id = data["session_id"]
    leave_room(broadcast.room(session_id))
    _leave(request.sid, session_id)
    return {"ok": True}


@socketio.on("disconnect", namespace=NS)
@socket_event(payload=False)
def on_disconnect(reason: Any = None) -> None:
    throttle.close_socket(request.sid)
    with _joined_lock:
        rooms = list(_joined.get(request.sid, ()))
    for session_id in rooms:
        _leave(request.sid, session_id)


@socketio.on("message", namespace=NS)
@socket_event(MessageEventSchema())
def on_message(data: dict) -> dict:
    """Chat or a question from a logged-in viewer; the broadcast follows the service's commit."""
    user = require_user()
    message = chat.post_message(user, data["session_id"], body=data["body"], kind=data["kind"])
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
