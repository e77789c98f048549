"""What a joining viewer is told (the session's status, its current pin with stock) and what the
live page shows, kept in each server process, so neither costs a database round trip.

1,200 viewers arriving in ten seconds each read the session, its pin, the pin's product,
variants and prices: thousands of queries, on the pool checkout needs. Instead each process
keeps one `Room` per session, read from the database once and then kept current by the same
news that tells the viewers: `broadcast.emit` applies every `pinned`, `unpinned`, `status` and
`stock` event here before sending it, and with Redis the Socket.IO listener applies the news
other processes send (shop.redis_link `on_news`). A room older than ROOM_CACHE_SECONDS is
read again in the background while joins go on with it, so news lost while Redis was away, or
a change that sends none (a product's name), heals by itself; only a process without the room
reads it on the join, and concurrent joins then wait for one read, never one each.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_request_context, request

from live import broadcast
from shop.extensions import socketio

log = logging.getLogger(__name__)


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
        self._renewals = _Renewals()

    def get(self, session_id: int) -> Room:
        """The room, from memory; raises SessionNotFound.

        A room older than `max_age` is still given, and one read in the background replaces
        it: joins never wait for that read (at 1,200 arriving viewers every join of a process
        waited 1.4 s behind the read that renewed its room). A room is read here only when
        there is none, or on every call with `max_age` 0.
        """
        room = self._rooms.get(session_id)
        if room is not None and self.max_age > 0:
            if time.monotonic() - room.read_at >= self.max_age:
                self._renewals.start(session_id, self._renew, session_id)
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
            # else news arrived while we read: ours may be older than the room the news kept
            # current (if any), which stays, due for renewal; this caller gets ours
        return room

    def _renew(self, session_id: int) -> None:
        from live.errors import SessionNotFound

        try:
            self._read(session_id)
        except SessionNotFound:
            with self._lock:
                self._rooms.pop(session_id, None)

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


#: The events that change the chat history a page loads.
CHAT_NEWS = frozenset({"message", "message_update"})


class Histories:
    """Each session's chat history as the live page loads it (newest last, the API's JSON),
    read from the database once and then kept current by the chat news, like the rooms.

    Every arriving viewer's page loads the history; while questions arrive several times a
    second a copy that each message throws away would be read again for nearly every viewer.
    Instead a `message` adds its line and a `message_update` changes or (hidden) removes one.
    News that arrives while a read is under way is noted and applied to what the read returns,
    in order (applying is by id, so news the read already reflects changes nothing). A history
    is read again after ROOM_CACHE_SECONDS at the latest: news lost while Redis was away, a
    change that sends none (an author's new name) and a line hidden out of a full window
    (the window then holds one fewer) heal by then.
    """

    def __init__(self, max_age: float, limit: int = 200) -> None:
        self.max_age = max_age
        self.limit = limit
        self._kept: dict[tuple[int, str | None], _History] = {}
        self._seq = 0  # news applied, in order
        self._readers: dict[int, int] = {}  # reads under way per session
        self._journal: dict[int, list[tuple[int, str, dict]]] = {}  # their news meanwhile
        self._lock = threading.Lock()
        self._reading: dict[tuple[int, str | None], threading.Lock] = {}
        self._renewals = _Renewals()

    def get(self, session_id: int, kind: str | None, read: Callable[[], list[dict]]) -> bytes:
        """The history's JSON; `read` gives the latest `limit` visible messages when needed.
        One older than `max_age` is still given while one read in the background renews it."""
        key = (session_id, kind)
        history = self._kept.get(key) if self.max_age > 0 else None
        if history is not None:
            if time.monotonic() - history.read_at >= self.max_age:
                self._renewals.start(key, self._load, key, read)
            with self._lock:
                return history.json(self.limit)
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # one read for a missing history, however many viewers arrive at once
            history = (self._kept.get(key) if self.max_age > 0 else None) or self._load(key, read)
            with self._lock:
                return history.json(self.limit)

    def _load(self, key: tuple[int, str | None], read: Callable[[], list[dict]]) -> _History:
        session_id, kind = key
        with self._lock:
            since = self._seq
            self._readers[session_id] = self._readers.get(session_id, 0) + 1
            self._journal.setdefault(session_id, [])
        try:
            history = _History(kind, time.monotonic(), read())
        finally:
            with self._lock:
                journal = self._journal[session_id]
                self._readers[session_id] -= 1
                if not self._readers[session_id]:
                    del self._readers[session_id], self._journal[session_id]
        with self._lock:
            for seq, event, data in journal:
                if seq > since:
                    history.apply(event, data, self.limit)
            self._kept[key] = history
        return history

    def apply(self, event: str, data: Any) -> None:
        if event not in CHAT_NEWS or not isinstance(data, dict):
            return
        session_id = data.get("session_id")
        if not isinstance(session_id, int) or not isinstance(data.get("id"), int):
            return
        with self._lock:
            self._seq += 1
            if session_id in self._journal:
                self._journal[session_id].append((self._seq, event, data))
            for (kept_session, _), history in self._kept.items():
                if kept_session == session_id:
                    history.apply(event, data, self.limit)


class _History:
    """One kept history: its lines by id, and their JSON once asked for."""

    def __init__(self, kind: str | None, read_at: float, items: list[dict]) -> None:
        self.kind = kind
        self.read_at = read_at
        self.lines = {item["id"]: item for item in items}
        self._json: bytes | None = None

    def apply(self, event: str, data: dict, limit: int) -> None:
        line = self.lines.get(data["id"])
        if event == "message":
            if line is None and (self.kind is None or data.get("kind") == self.kind):
                self.lines[data["id"]] = {key: data.get(key) for key in LINE_KEYS}
                for old in sorted(self.lines)[:-limit]:
                    del self.lines[old]
        elif line is not None:
            if data.get("hidden"):
                del self.lines[data["id"]]
            else:
                self.lines[data["id"]] = {
                    **line,
                    **{key: data[key] for key in ("answered", "votes") if key in data},
                }
        else:
            return
        self._json = None

    def json(self, limit: int) -> bytes:
        if self._json is None:
            items = [self.lines[line_id] for line_id in sorted(self.lines)[-limit:]]
            self._json = current_app.json.dumps({"items": items}).encode()
        return self._json


#: A chat line as the history answers it (API.md `message`, MessageSchema).
LINE_KEYS = ("id", "session_id", "user_name", "body", "kind", "created_at", "answered", "votes")


class _Renewals:
    """Renews kept things in the background, at most one renewal per key at a time, on the
    background connections (shop.budgets); a failed renewal is logged and tried again at the
    next use, while what is kept goes on serving."""

    def __init__(self) -> None:
        self._running: set[Any] = set()
        self._lock = threading.Lock()

    def start(self, key: Any, renew: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            if key in self._running:
                return
            self._running.add(key)
        app = current_app._get_current_object()
        # What is read holds URLs (a cover's, a photo's): built as for the request that asked
        root = request.url_root if has_request_context() else "http://localhost/"
        try:
            socketio.start_background_task(self._run, app, root, key, renew, *args)
        except Exception:
            self._done(key)
            raise

    def _run(
        self, app: Flask, root: str | None, key: Any, renew: Callable[..., Any], *args: Any
    ) -> None:
        from shop.budgets import background

        try:
            with background(app, url_root=root):
                renew(*args)
        except Exception as err:  # noqa: BLE001 - what is kept serves until a read succeeds
            log.warning("could not renew %r in the background: %s", key, err)
        finally:
            self._done(key)

    def _done(self, key: Any) -> None:
        with self._lock:
            self._running.discard(key)


def rooms(app: Flask | None = None) -> Rooms:
    """This app's rooms (one per process and app)."""
    app = app or current_app._get_current_object()
    return app.extensions[_ROOMS]


def histories(app: Flask | None = None) -> Histories:
    """This app's chat histories (one per process and app)."""
    app = app or current_app._get_current_object()
    return app.extensions[_HISTORIES]


_ROOMS = "farmlive.live_rooms"
_HISTORIES = "farmlive.live_histories"


def init_app(app: Flask) -> None:
    """Give the app its rooms and chat histories and let them hear the news (held weakly: a
    discarded app's stop listening instead of living on)."""
    max_age = float(app.config["ROOM_CACHE_SECONDS"])
    for key, own in ((_ROOMS, Rooms(max_age)), (_HISTORIES, Histories(max_age))):
        app.extensions[key] = own
        broadcast.on_news(_listener(weakref.ref(own)))
    broadcast.listen_to_other_processes()


def _listener(ref: weakref.ref) -> Callable[[str, Any], None]:
    def listener(event: str, data: Any) -> None:
        found = ref()
        if found is not None:
            found.apply(event, data)

    return listener
