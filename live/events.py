"""Socket.IO namespace /live: a room per session, viewers join and chat, news goes to rooms.

Handlers check `current_user` themselves (login_required does not apply to sockets) and never
commit (services do). `socket_event` loads every payload with its schema first (anything else
gets an `{ok: false, error}` ack in API.md's error shape, never an exception) and gives the
database session back. A joining socket counts under its viewer identity (`live.identity`), or
not at all. Domain news from the order service arrives through `shop.signals` after its commit
and is forwarded to the rooms.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room, leave_room
from flask_socketio import rooms as socket_rooms

from live import broadcast, chat, checkout, identity, rooms, throttle, viewers
from live.errors import SessionNotFound, TooManyRequests
from live.schemas import JoinEventSchema, LeaveEventSchema, MessageEventSchema
from shop import signals
from shop.accounts import require_user
from shop.budgets import SOCKETS, budget
from shop.errors import discard_session
from shop.extensions import socketio
from shop.models import Role
from shop.sockets import error_ack, socket_event

NS = broadcast.NAMESPACE
log = logging.getLogger(__name__)

# sid -> {session id: the identity it counts under there (None: watching, not counted)}, so a
# dropped connection leaves every room it joined and un-counts exactly what it counted.
_joined: dict[str, dict[int, str | None]] = {}
_joined_lock = threading.Lock()


# sid -> (who counts, the browser's anonymous identity, user id), taken once at connect: a
# join then needs no user lookup (the page reconnects its socket after a login).
_identities: dict[str, tuple[str | None, str | None, int | None]] = {}


@socketio.on("connect", namespace=NS)
def on_connect(auth: Any = None) -> bool:
    """Anyone may watch (Engine.IO checked the origin), but one client address holds at most
    SOCKET_CONNECTIONS_PER_ADDRESS sockets in this process."""
    if not throttle.open_socket(request.sid, identity.client_address()):
        refused = TooManyRequests()
        raise ConnectionRefusedError(refused.message, {"error": error_ack(refused)["error"]})
    with budget(SOCKETS):
        try:
            who, browser = identity.viewer_identities()  # loads a logged-in viewer's user
            user_id = current_user.id if current_user.is_authenticated else None
        except Exception:  # the database is away: watch as this browser until the next connect
            log.warning("socket connect: the viewer's login could not be read", exc_info=True)
            anonymous = identity.anonymous_id(request.cookies)
            who = browser = f"a:{anonymous}" if anonymous else None
            user_id = None
        finally:
            discard_session()
    _identities[request.sid] = (who, browser, user_id)
    return True


@socketio.on("join", namespace=NS)
@socket_event(JoinEventSchema())
def on_join(data: dict) -> dict:
    """Watch a session: its room's news, counted once per viewer identity (or not at all).

    The session's status and pin come from this process's rooms (live.rooms), the identity
    from the connect, and the visit and count are noted for the ledger's next write: a
    viewer's join costs no database round trip.
    """
    session_id = data["session_id"]
    name = broadcast.room(session_id)
    was_in = name in socket_rooms(namespace=NS)
    # In the room before its state is read: news sent from now on reaches this socket, and the
    # state holds all news sent before (a pin between the read and the join was missed).
    join_room(name)
    try:
        room = rooms.rooms().get(session_id)
    except Exception:  # no such session, or its state cannot be read now: not joined
        if not was_in:
            leave_room(name)
        raise
    if data["console"] and _may_host(room):
        # the host console listens to the room without counting as a viewer, and is never
        # refused because the viewers behind its office's address joined too often
        return {"ok": True, "state": room.state(viewers.count(session_id))}
    if not throttle.allow_join(identity.client_address()):
        if not was_in:
            leave_room(name)
        raise TooManyRequests()
    app = current_app._get_current_object()
    who, browser, user_id = _identities.get(request.sid, (None, None, None))
    with _joined_lock:
        joined = _joined.setdefault(request.sid, {})
        first = session_id not in joined
        if first:
            joined[session_id] = who
        else:
            who = joined[session_id]  # a second join of the same socket changes nothing
    store = viewers.counter()
    counted = first and who is not None
    count = store.add(session_id, who, request.sid) if counted else store.count(session_id)
    if counted and room.status != "ended":
        ledger = viewers.ledger(app)
        ledger.visit(app, session_id, who, user_id, browser)
        ledger.count(app, session_id, count)
    viewers.ensure_sampler(app)
    if counted:
        viewers.announce(app, session_id)
    return {"ok": True, "state": room.state(count)}


def _may_host(room: rooms.Room) -> bool:
    """Its host or an admin (the console asks; a user lookup, as the console is one client)."""
    user = current_user
    return bool(user.is_authenticated and (user.role == Role.ADMIN or user.id == room.host_id))


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
    _identities.pop(request.sid, None)
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

    with signals.within(app):
        news = sale_news(order_id) if order_id else None
    if news is not None:
        broadcast.emit("sale", news, news["session_id"])


__all__ = ["SessionNotFound", "on_join", "on_leave", "on_message"]
