"""Viewer counts: connections per session room, unique viewers, peak and a per-minute curve.

Counts live in Redis when REDIS_URL is set (every server process sees the same room), else in
this process. The database keeps what reports need: `ViewerVisit`, `peak_viewers` and one
`ViewerSample` per minute.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from live import broadcast
from live.models import LiveSession, SessionStatus, ViewerSample, ViewerVisit
from shop.database import begin_write
from shop.extensions import db, socketio
from shop.models import utcnow

BROADCAST_INTERVAL = 1.0  # seconds: a crowd joining at once gets one count per second


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
    """Connections per session in a Redis set, shared by every server process."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix

    def _key(self, session_id: int) -> str:
        return f"{self._prefix}:live:{session_id}:connections"

    def add(self, session_id: int, sid: str) -> int:
        pipe = self._redis.pipeline()
        pipe.sadd(self._key(session_id), sid)
        pipe.expire(self._key(session_id), 2 * 86400)
        pipe.scard(self._key(session_id))
        return int(pipe.execute()[-1])

    def remove(self, session_id: int, sid: str) -> int:
        pipe = self._redis.pipeline()
        pipe.srem(self._key(session_id), sid)
        pipe.scard(self._key(session_id))
        return int(pipe.execute()[-1])

    def count(self, session_id: int) -> int:
        return int(self._redis.scard(self._key(session_id)))


def counter(app: Flask | None = None) -> MemoryCounter | RedisCounter:
    app = app or current_app._get_current_object()
    store = app.extensions.get("farmlive.live_viewers")
    if store is None:
        url = app.config.get("REDIS_URL")
        store = RedisCounter(url, app.config["SOCKETIO_CHANNEL"]) if url else MemoryCounter()
        app.extensions["farmlive.live_viewers"] = store
    return store


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
