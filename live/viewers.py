"""Viewer counts: connections per session room, unique viewers, peak and a per-minute curve.

Counts live in Redis when REDIS_URL is set (every server process sees the same room), else in
this process. The database keeps what reports need: `ViewerVisit`, `peak_viewers` and one
`ViewerSample` per minute.

With Redis, each session has one sorted set of Socket.IO sids scored by when their process last
vouched for them (Redis server time, so hosts' clocks never matter). A process adds and removes
its own sids at once (join, leave, clean disconnect) and keeps a copy of them in memory; a
heartbeat task re-scores that copy every VIEWER_STALE_SECONDS / 3 while the process has viewers.
The count is the number of sids seen within VIEWER_STALE_SECONDS, so the viewers of a process
that dies without disconnecting them (SIGKILL, OOM, power) drop out within that time. The
heartbeat also puts back sids Redis lost (a restart, or an outage longer than the stale time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from live import broadcast
from live.models import LiveSession, SessionStatus, ViewerSample, ViewerVisit
from shop.database import begin_write
from shop.extensions import db, socketio
from shop.models import utcnow

log = logging.getLogger(__name__)

BROADCAST_INTERVAL = 1.0  # seconds: a crowd joining at once gets one count per second
HEARTBEAT_BATCH = 1000  # sids per script call, so one call never holds Redis for long


class MemoryCounter:
    """Connections per session inside this process."""

    def __init__(self) -> None:
        self._rooms: dict[int, set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, session_id: int, sid: str) -> int:
        with self._lock:
            self._rooms[session_id].add(sid)
            return len(self._rooms[session_id])

    def remove(self, session_id: int, sid: str) -> int:
        with self._lock:
            self._rooms[session_id].discard(sid)
            return len(self._rooms[session_id])

    def count(self, session_id: int) -> int:
        with self._lock:
            return len(self._rooms.get(session_id, ()))


class RedisCounter:
    """Connections per session shared by every server process, forgetting dead processes' ones.

    The sorted set holds sid -> last seen; this process's own sids are also kept in `_mine` so
    the heartbeat can vouch for them. Adds and removes write to memory first, then to Redis.
    """

    # KEYS[1] the session's set; ARGV: stale seconds, "add" | "remove" | "count", sids...
    # Scores are Redis server time; every call prunes stale sids and returns the live count.
    _SCRIPT = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    local stale = tonumber(ARGV[1])
    for i = 3, #ARGV do
        if ARGV[2] == 'add' then
            redis.call('ZADD', KEYS[1], now, ARGV[i])
        else
            redis.call('ZREM', KEYS[1], ARGV[i])
        end
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - stale)
    if ARGV[2] == 'add' then
        redis.call('PEXPIRE', KEYS[1], math.ceil(stale * 1000))
    end
    return redis.call('ZCARD', KEYS[1])
    """

    def __init__(self, url: str, prefix: str, *, stale_seconds: float) -> None:
        import redis

        self._script = redis.Redis.from_url(url).register_script(self._SCRIPT)
        self._prefix = prefix
        self._stale = stale_seconds
        self._mine: dict[int, set[str]] = {}
        self._lock = threading.Lock()
        self._beating = False

    def _key(self, session_id: int) -> str:
        return f"{self._prefix}:live:{session_id}:viewers"

    def _run(self, session_id: int, op: str, sids: Iterable[str] = ()) -> int:
        return int(self._script(keys=[self._key(session_id)], args=[self._stale, op, *sids]))

    def add(self, session_id: int, sid: str) -> int:
        with self._lock:
            self._mine.setdefault(session_id, set()).add(sid)
            start = not self._beating
            self._beating = True
        if start:
            socketio.start_background_task(self._heartbeat)
        return self._run(session_id, "add", [sid])

    def remove(self, session_id: int, sid: str) -> int:
        with self._lock:
            room = self._mine.get(session_id, set())
            room.discard(sid)
            if not room:
                self._mine.pop(session_id, None)
        return self._run(session_id, "remove", [sid])

    def count(self, session_id: int) -> int:
        return self._run(session_id, "count")

    def _heartbeat(self) -> None:
        """Vouch for this process's sids until it has none left (the next add starts it again)."""
        while True:
            socketio.sleep(self._stale / 3)
            with self._lock:
                mine = {session_id: set(sids) for session_id, sids in self._mine.items()}
                if not mine:
                    self._beating = False
                    return
            try:
                for session_id, sids in mine.items():
                    self._vouch(session_id, sids)
            except Exception as err:  # noqa: BLE001 - Redis down: try again next beat
                log.warning("viewer heartbeat failed: %s", err)

    def _vouch(self, session_id: int, sids: set[str]) -> None:
        """Re-score `sids`, then take out any that left while we wrote (their remove may have
        reached Redis before our re-score did)."""
        ordered = sorted(sids)
        for start in range(0, len(ordered), HEARTBEAT_BATCH):
            self._run(session_id, "add", ordered[start : start + HEARTBEAT_BATCH])
        with self._lock:
            gone = sids - self._mine.get(session_id, set())
        if gone:
            self._run(session_id, "remove", sorted(gone))


def counter(app: Flask | None = None) -> MemoryCounter | RedisCounter:
    app = app or current_app._get_current_object()
    store = app.extensions.get("farmlive.live_viewers")
    if store is None:
        store = app.extensions["farmlive.live_viewers"] = _make_counter(app)
    return store


def _make_counter(app: Flask) -> MemoryCounter | RedisCounter:
    url = app.config.get("REDIS_URL")
    if not url:
        return MemoryCounter()
    stale = app.config["VIEWER_STALE_SECONDS"]
    return RedisCounter(url, app.config["SOCKETIO_CHANNEL"], stale_seconds=stale)


def count(session_id: int) -> int:
    return counter().count(session_id)


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def record_visit(session_id: int, viewer_key: str, user_id: int | None, *, now=None) -> None:
    """Remember a distinct viewer once per session (unique viewers in the report)."""
    now = now or utcnow()
    exists = db.session.scalar(
        select(ViewerVisit.id).where(
            ViewerVisit.session_id == session_id, ViewerVisit.viewer_key == viewer_key
        )
    )
    if exists is not None:
        return
    begin_write()
    try:
        db.session.execute(
            insert(ViewerVisit).values(
                session_id=session_id, viewer_key=viewer_key, user_id=user_id, first_seen=now
            )
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another tab of the same viewer got there first


def record_count(session_id: int, viewers: int, *, now=None) -> None:
    """Raise the session's peak and this minute's sample to `viewers` while it is live."""
    now = now or utcnow()
    minute = _minute(now)
    begin_write()
    live = db.session.get(LiveSession, session_id)
    if live is None or live.status != SessionStatus.LIVE:
        db.session.rollback()
        return
    db.session.execute(
        update(LiveSession)
        .where(LiveSession.id == session_id, LiveSession.peak_viewers < viewers)
        .values(peak_viewers=viewers)
        .execution_options(synchronize_session=False)
    )
    raised = db.session.execute(
        update(ViewerSample)
        .where(
            ViewerSample.session_id == session_id,
            ViewerSample.minute == minute,
            ViewerSample.viewers < viewers,
        )
        .values(viewers=viewers)
        .execution_options(synchronize_session=False)
    )
    if raised.rowcount == 0:
        savepoint = db.session.begin_nested()
        try:
            db.session.execute(
                insert(ViewerSample).values(session_id=session_id, minute=minute, viewers=viewers)
            )
            savepoint.commit()
        except IntegrityError:
            savepoint.rollback()  # this minute already has a sample at least as high
    db.session.commit()


# --- broadcasting the count, at most once per second per session ------------------------------


class _Pacer:
    """Per app: when each session's count was last sent and which have a send pending."""

    def __init__(self) -> None:
        self.last_sent: dict[int, float] = {}
        self.pending: set[int] = set()
        self.lock = threading.Lock()


def _pacer(app: Flask) -> _Pacer:
    return app.extensions.setdefault("farmlive.live_viewer_pacer", _Pacer())


def announce(app: Flask, session_id: int) -> None:
    """Send the room its viewer count now, or once at the end of the current interval."""
    pacer = _pacer(app)
    with pacer.lock:
        wait = pacer.last_sent.get(session_id, 0.0) + BROADCAST_INTERVAL - time.monotonic()
        if wait > 0:
            if session_id in pacer.pending:
                return
            pacer.pending.add(session_id)
        else:
            pacer.last_sent[session_id] = time.monotonic()
    if wait <= 0:
        _send_count(app, session_id)
        return
    try:
        socketio.start_background_task(_send_later, app, session_id, wait)
    except Exception:
        with pacer.lock:
            pacer.pending.discard(session_id)
        raise


def _send_later(app: Flask, session_id: int, wait: float) -> None:
    pacer = _pacer(app)
    socketio.sleep(wait)
    with pacer.lock:
        pacer.pending.discard(session_id)
        pacer.last_sent[session_id] = time.monotonic()
    _send_count(app, session_id)


def _send_count(app: Flask, session_id: int) -> None:
    with app.app_context():
        viewers = counter(app).count(session_id)
    broadcast.emit("viewers", {"session_id": session_id, "count": viewers}, session_id)


# --- one sample per minute for every live session, by a background task -----------------------

_sampler_started: set[int] = set()


def ensure_sampler(app: Flask) -> None:
    """Start this process's per-minute sampler once (only where background tasks run)."""
    if not app.config.get("RUN_BACKGROUND_TASKS") or id(app) in _sampler_started:
        return
    _sampler_started.add(id(app))
    socketio.start_background_task(_sample_forever, app)


def _sample_forever(app: Flask) -> None:
    while True:
        socketio.sleep(60 - time.time() % 60 + 1)
        with app.app_context():
            try:
                live_ids = db.session.scalars(
                    select(LiveSession.id).where(LiveSession.status == SessionStatus.LIVE)
                ).all()
                for session_id in live_ids:
                    record_count(session_id, counter(app).count(session_id))
            except Exception:  # noqa: BLE001 - a sampler must outlive a database hiccup
                app.logger.exception("viewer sampler failed")
            finally:
                db.session.remove()
