"""What a joining viewer is told (the session's status, its current pin with stock) and what the
live page shows, kept in each server process, so neither costs a database round trip.

1,200 viewers arriving in ten seconds each read the session, its pin, the pin's product,
variants and prices: thousands of queries, on the pool checkout needs. Instead each process
keeps one `Room` per session, read from the database once and then kept current by the same
news that tells the viewers: `broadcast.emit` applies every `pinned`, `unpinned`, `status` and
`stock` event here before sending it, and with Redis the Socket.IO listener applies the news
other processes send (shop.redis_link `on_news`). A room is read again after ROOM_CACHE_SECONDS
at the latest, so news lost while Redis was away, or a change that sends none (a product's
name), heals by itself; concurrent joins to a stale room wait for one read, never one each.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import Flask, current_app

from live import broadcast


@dataclass(frozen=True)
class Room:
    """A session as a joining viewer, and the live page, see it."""

    session_id: int
    status: str
    host_id: int
    pin: dict | None
    read_at: float  # time.monotonic() of the database read it started from
    session: dict  # the session's JSON (SessionSchema) as read then
    scheduled_at: datetime | None = None

    def state(self, viewers: int) -> dict:
        """The join acknowledgement's `state` (API.md)."""
        return {"status": self.status, "pinned": self.pin, "viewers": viewers}

    def page(self, viewers: int) -> dict:
        """The session's JSON for the live page: as read, with today's status, pin and count."""
        return {**self.session, "status": self.status, "pinned": self.pin, "viewers": viewers}


class Rooms:
    """This process's rooms: `get` for joins, `apply` for news."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._rooms: dict[int, Room] = {}
        self._news: dict[int, int] = {}  # news applied per session, to spot a read overtaken
        self._lock = threading.Lock()
        self._reading: dict[int, threading.Lock] = {}

    def get(self, session_id: int) -> Room:
        """The room, from memory while fresh; raises SessionNotFound."""
        room = self._fresh(session_id)
        if room is not None:
            return room
        with self._lock:
            reading = self._reading.setdefault(session_id, threading.Lock())
        with reading:  # one read per stale room, however many viewers arrive at once
            room = self._fresh(session_id)
            return room if room is not None else self._read(session_id)

    def _fresh(self, session_id: int) -> Room | None:
        room = self._rooms.get(session_id)
        if room is not None and time.monotonic() - room.read_at < self.max_age:
            return room
        return None

    def _read(self, session_id: int) -> Room:
        from live import services
        from live.schemas import SessionSchema
        from shop.extensions import db

        news_before = self._news.get(session_id, 0)
        started = time.monotonic()
        try:
            live = services.get_session(session_id)  # SessionNotFound when there is none
            session = SessionSchema(exclude=("viewers",)).dump(live)  # counted when shown
            room = Room(
                session_id,
                live.status,
                live.host_id,
                session["pinned"],
                started,
                session=session,
                scheduled_at=live.scheduled_at,
            )
        finally:
            db.session.rollback()  # a read: end it, so the connection goes back at once
        with self._lock:
            if self._news.get(session_id, 0) == news_before:
                self._rooms[session_id] = room
            else:  # news arrived while we read: ours may be older; the next join reads again
                self._rooms.pop(session_id, None)
        return room

    def apply(self, event: str, data: Any) -> None:
        """Bring a room up to date with news sent to its viewers (any event; only pins, status
        and stock are about the room)."""
        if event not in ROOM_NEWS or not isinstance(data, dict):
            return
        if not isinstance(data.get("session_id"), int):
            return
        session_id = data["session_id"]
        with self._lock:
            self._news[session_id] = self._news.get(session_id, 0) + 1
            room = self._rooms.get(session_id)
            if room is None:
                return
            changed = _changed(room, event, data)
            if changed is not None:
                self._rooms[session_id] = changed


#: The events that change what a room holds; other news (counts, chat, sales) leaves it alone.
ROOM_NEWS = frozenset({"pinned", "unpinned", "status", "stock"})


def _changed(room: Room, event: str, data: dict) -> Room | None:
    if event == "pinned" and isinstance(data.get("pin"), dict):
        product = data["pin"].get("product") or {}
        lineup = room.session.get("lineup") or []
        if product and all(item.get("id") != product.get("id") for item in lineup):
            # pinning adds the product to the line-up (live.services.pin_product)
            room = replace(room, session={**room.session, "lineup": [*lineup, product]})
        return replace(room, pin=data["pin"])
    if event == "unpinned":
        return replace(room, pin=None)
    if event == "status" and isinstance(data.get("status"), str):
        pin = None if data["status"] == "ended" else room.pin
        return replace(room, status=data["status"], pin=pin)
    if event == "stock" and room.pin is not None:
        variants = [
            {**v, "stock": data["stock"]} if v.get("id") == data.get("variant_id") else v
            for v in room.pin.get("variants", [])
        ]
        return replace(room, pin={**room.pin, "variants": variants})
    return None


def rooms(app: Flask | None = None) -> Rooms:
    """This app's rooms (one per process and app)."""
    app = app or current_app._get_current_object()
    return app.extensions[_ROOMS]


_ROOMS = "farmlive.live_rooms"


def init_app(app: Flask) -> None:
    """Give the app its rooms and let them hear the news (held weakly: a discarded app's rooms
    stop listening instead of living on)."""
    own = app.extensions[_ROOMS] = Rooms(float(app.config["ROOM_CACHE_SECONDS"]))
    ref = weakref.ref(own)

    def listener(event: str, data: Any) -> None:
        found = ref()
        if found is not None:
            found.apply(event, data)

    broadcast.on_news(listener)
    broadcast.listen_to_other_processes()
