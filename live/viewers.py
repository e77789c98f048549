"""Viewer counts: distinct viewers per session room, unique viewers, peak and a per-minute curve.

A viewer is an identity from `live.identity` (a logged-in user, or one browser's signed anonymous
id), not a socket: the several tabs of one browser count once, and sockets without an identity
are not counted at all. Counts live in Redis when REDIS_URL is set (every server process sees the
same room), else in this process. The database keeps what reports need: `ViewerVisit` (one row
per identity), `peak_viewers` and one `ViewerSample` per minute.

With Redis, each session has a sorted set of "process|identity" seats scored by when their
process last vouched for them (Redis server time, so hosts' clocks never matter), and a hash of
identity -> how many processes seat it; the count is the hash's size. A process takes a seat when
its first socket of an identity joins and gives it up when its last one leaves (one script keeps
set and hash in step), and keeps its seats in memory; a heartbeat re-scores them every
VIEWER_STALE_SECONDS / 3 while the process has viewers. Seats not vouched for within
VIEWER_STALE_SECONDS are dropped, so the viewers of a process that dies without disconnecting
them (SIGKILL, OOM, power) leave the count within that time, while an identity also watching
through a live process stays. The heartbeat also puts back seats Redis lost (a restart, or an
outage longer than the stale time).

While Redis is unavailable a join, a leave or a count does not wait for it: each gives up after
REDIS_TIMEOUT_SECONDS and, for REDIS_CHECK_SECONDS after a failure, does not try at all; the
count shown is then this process's own viewers. The heartbeat keeps trying, and once Redis
answers it puts this process's seats back, so the counts are shared again within a beat.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from flask import Flask, current_app
from redis.exceptions import RedisError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from live import broadcast
from live.models import LiveSession, SessionStatus, ViewerSample, ViewerVisit
from shop.database import begin_write
from shop.extensions import db, socketio
from shop.models import utcnow
from shop.redis_link import Breaker, bounded_pool

log = logging.getLogger(__name__)

HEARTBEAT_BATCH = 1000  # seats per script call, so one call never holds Redis for long


class _Seats:
    """Which sockets of this process watch a session, grouped by viewer identity."""

    def __init__(self) -> None:
        self.rooms: dict[int, dict[str, set[str]]] = defaultdict(dict)
        self.lock = threading.Lock()

    def add(self, session_id: int, identity: str, sid: str) -> bool:
        """Seat `sid`; True when it is the identity's first socket in the room."""
        with self.lock:
            sids = self.rooms[session_id].setdefault(identity, set())
            sids.add(sid)
            return len(sids) == 1

    def remove(self, session_id: int, identity: str, sid: str) -> bool:
        """Unseat `sid`; True when the identity has no socket left in the room."""
        with self.lock:
            room = self.rooms.get(session_id, {})
            sids = room.get(identity)
            if sids is None:
                return False
            sids.discard(sid)
            if sids:
                return False
            del room[identity]
            if not room:
                self.rooms.pop(session_id, None)
            return True

    def snapshot(self) -> dict[int, set[str]]:
        with self.lock:
            return {session_id: set(room) for session_id, room in self.rooms.items()}

    def identities(self, session_id: int) -> set[str]:
        with self.lock:
            return set(self.rooms.get(session_id, ()))


class MemoryCounter:
    """Distinct viewers per session inside this process."""

    def __init__(self) -> None:
        self._seats = _Seats()

    def add(self, session_id: int, identity: str, sid: str) -> int:
        self._seats.add(session_id, identity, sid)
        return self.count(session_id)

    def remove(self, session_id: int, identity: str, sid: str) -> int:
        self._seats.remove(session_id, identity, sid)
        return self.count(session_id)

    def count(self, session_id: int) -> int:
        with self._seats.lock:
            return len(self._seats.rooms.get(session_id, ()))


class RedisCounter:
    """Distinct viewers per session shared by every server process, forgetting dead processes'.

    This process's seats are its identities with at least one socket in the room; they are kept
    in memory so the heartbeat can vouch for them. Adds and removes write to memory first, then
    to Redis (only when an identity's first socket arrives or its last one leaves).
    """

    # KEYS: the session's seats (sorted set "process|identity" -> last seen) and its identities
    # (hash identity -> number of seats). ARGV: stale seconds, "add" | "remove" | "count", seats.
    # Scores are Redis server time; every call drops stale seats and returns the live count.
    _SCRIPT = """
    local seats, ids = KEYS[1], KEYS[2]
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    local stale = tonumber(ARGV[1])
    if redis.call('EXISTS', seats) == 0 then
        redis.call('DEL', ids)
    end
    local function who(seat)
        return string.sub(seat, string.find(seat, '|', 1, true) + 1)
    end
    local function unseat(seat)
        if redis.call('ZREM', seats, seat) == 1 then
            if redis.call('HINCRBY', ids, who(seat), -1) <= 0 then
                redis.call('HDEL', ids, who(seat))
            end
        end
    end
    for i = 3, #ARGV do
        if ARGV[2] == 'add' then
            if redis.call('ZADD', seats, now, ARGV[i]) == 1 then
                redis.call('HINCRBY', ids, who(ARGV[i]), 1)
            end
        else
            unseat(ARGV[i])
        end
    end
    for _, seat in ipairs(redis.call('ZRANGEBYSCORE', seats, '-inf', now - stale)) do
        unseat(seat)
    end
    if ARGV[2] == 'add' then
        redis.call('PEXPIRE', seats, math.ceil(stale * 1000))
        redis.call('PEXPIRE', ids, math.ceil(stale * 1000))
    end
    return redis.call('HLEN', ids)
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        stale_seconds: float,
        timeout: float = 1.0,
        retry_after: float = 5.0,
        size: int = 50,
    ) -> None:
        import redis

        client = redis.Redis(connection_pool=bounded_pool(url, timeout, size))
        self._script = client.register_script(self._SCRIPT)
        self._breaker = Breaker("viewer counts (this process's own meanwhile)", retry_after)
        self._prefix = prefix
        self._stale = stale_seconds
        self._process = uuid.uuid4().hex
        self._seats = _Seats()
        self._lock = threading.Lock()
        self._beating = False

    def _keys(self, session_id: int) -> list[str]:
        base = f"{self._prefix}:live:{session_id}"
        return [f"{base}:viewer-seats", f"{base}:viewer-ids"]

    def _run(self, session_id: int, op: str, identities: Iterable[str] = ()) -> int:
        seats = [f"{self._process}|{identity}" for identity in identities]
        return int(self._script(keys=self._keys(session_id), args=[self._stale, op, *seats]))

    def add(self, session_id: int, identity: str, sid: str) -> int:
        first = self._seats.add(session_id, identity, sid)
        with self._lock:
            start = not self._beating
            self._beating = True
        if start:
            socketio.start_background_task(self._heartbeat)
        return self._shared(session_id, "add" if first else "count", [identity] if first else [])

    def remove(self, session_id: int, identity: str, sid: str) -> int:
        last = self._seats.remove(session_id, identity, sid)
        return self._shared(session_id, "remove" if last else "count", [identity] if last else [])

    def count(self, session_id: int) -> int:
        return self._shared(session_id, "count")

    def _shared(self, session_id: int, op: str, identities: Iterable[str] = ()) -> int:
        """The count over every process; this process's own while Redis is unavailable (what
        was missed there is put right by the heartbeat once Redis answers again)."""
        if self._breaker.allows():
            try:
                count = self._run(session_id, op, identities)
            except RedisError as err:
                self._breaker.failed(err)
            else:
                self._breaker.succeeded()
                return count
        return len(self._seats.identities(session_id))

    def _heartbeat(self) -> None:
        """Vouch for this process's seats until it has none left (the next add starts it again)."""
        while True:
            socketio.sleep(self._stale / 3)
            mine = self._seats.snapshot()
            if not mine:
                with self._lock:
                    if not self._seats.snapshot():
                        self._beating = False
                        return
                continue
            try:
                for session_id, identities in mine.items():
                    self._vouch(session_id, identities)
            except RedisError as err:  # Redis away: counts stay local; try again next beat
                self._breaker.failed(err)
            except Exception:  # noqa: BLE001 - the heartbeat must outlive anything
                log.exception("viewer heartbeat failed")
            else:
                self._breaker.succeeded()  # seats are back: counts are shared again

    def _vouch(self, session_id: int, identities: set[str]) -> None:
        """Re-score `identities`' seats, then give up any whose last socket left while we wrote
        (its remove may have reached Redis before our re-score did)."""
        ordered = sorted(identities)
        for start in range(0, len(ordered), HEARTBEAT_BATCH):
            self._run(session_id, "add", ordered[start : start + HEARTBEAT_BATCH])
        gone = identities - self._seats.identities(session_id)
        if gone:
            self._run(session_id, "remove", sorted(gone))


_making = threading.Lock()


def counter(app: Flask | None = None) -> MemoryCounter | RedisCounter:
    """The app's one counter (made on first use; a crowd's first joins must share it)."""
    app = app or current_app._get_current_object()
    store = app.extensions.get("farmlive.live_viewers")
    if store is None:
        with _making:
            store = app.extensions.get("farmlive.live_viewers")
            if store is None:
                store = app.extensions["farmlive.live_viewers"] = _make_counter(app)
    return store


def _make_counter(app: Flask) -> MemoryCounter | RedisCounter:
    url = app.config.get("REDIS_URL")
    if not url:
        return MemoryCounter()
    return RedisCounter(
        url,
        app.config["SOCKETIO_CHANNEL"],
        stale_seconds=app.config["VIEWER_STALE_SECONDS"],
        timeout=app.config["REDIS_TIMEOUT_SECONDS"],
        retry_after=app.config["REDIS_CHECK_SECONDS"],
        size=app.config["REDIS_MAX_CONNECTIONS"],
    )


def count(session_id: int) -> int:
    return counter().count(session_id)


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def record_visit(
    session_id: int,
    viewer_key: str,
    user_id: int | None,
    *,
    browser_key: str | None = None,
    now: datetime | None = None,
) -> None:
    """Remember a distinct viewer once per session (unique viewers in the report).

    `browser_key` is the anonymous identity of the browser a logged-in viewer watches from: the
    visit it made before logging in becomes the user's, so watching, logging in in the buy sheet
    and buying is one viewer, not two.
    """
    now = now or utcnow()
    merge = browser_key if browser_key and browser_key != viewer_key else None
    seen = set(
        db.session.scalars(
            select(ViewerVisit.viewer_key).where(
                ViewerVisit.session_id == session_id,
                ViewerVisit.viewer_key.in_([viewer_key, merge] if merge else [viewer_key]),
            )
        )
    )
    if viewer_key in seen and merge not in seen:
        return
    begin_write()
    if merge in seen:
        _move_visit(session_id, merge, viewer_key, user_id)
    savepoint = db.session.begin_nested()
    try:
        db.session.execute(
            insert(ViewerVisit).values(
                session_id=session_id, viewer_key=viewer_key, user_id=user_id, first_seen=now
            )
        )
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()  # already there: another tab, or the browser's visit just moved
    db.session.commit()


def _move_visit(session_id: int, old_key: str, new_key: str, user_id: int | None) -> None:
    """Give the browser's visit to the user; when the user has one already, drop the browser's."""
    visit = (ViewerVisit.session_id == session_id, ViewerVisit.viewer_key == old_key)
    savepoint = db.session.begin_nested()
    try:
        db.session.execute(
            update(ViewerVisit)
            .where(*visit)
            .values(viewer_key=new_key, user_id=user_id)
            .execution_options(synchronize_session=False)
        )
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        db.session.execute(
            delete(ViewerVisit).where(*visit).execution_options(synchronize_session=False)
        )


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


# --- what reports keep, written in batches off the event path ----------------------------------


class ViewerLedger:
    """Visits and counts to write, collected from joins and written together by one background
    task every VIEWER_RECORD_SECONDS, with the background work's own connections.

    A join only notes what happened (in memory): 1,200 viewers arriving cost a few short
    transactions instead of thousands on the socket events' connections, and no join waits for
    one. A viewer this process has recorded already (a re-join after a reconnect) is not noted
    again. With VIEWER_RECORD_SECONDS 0 each note is written at once (the tests).
    """

    SEEN_LIMIT = 200_000  # remembered (session, viewer) pairs; past it, start over

    def __init__(self) -> None:
        self._visits: dict[tuple[int, str], tuple[int | None, str | None]] = {}
        self._counts: dict[int, int] = {}
        self._seen: set[tuple[int, str, str | None]] = set()
        self._scheduled = False
        self._lock = threading.Lock()

    def visit(
        self,
        app: Flask,
        session_id: int,
        viewer_key: str,
        user_id: int | None,
        browser_key: str | None,
    ) -> None:
        seen = (session_id, viewer_key, browser_key)
        with self._lock:
            if seen in self._seen:
                return
            if len(self._seen) >= self.SEEN_LIMIT:
                self._seen.clear()
            self._seen.add(seen)
            self._visits.setdefault((session_id, viewer_key), (user_id, browser_key))
        self._soon(app)

    def count(self, app: Flask, session_id: int, viewers: int) -> None:
        with self._lock:
            self._counts[session_id] = max(viewers, self._counts.get(session_id, 0))
        self._soon(app)

    def _soon(self, app: Flask) -> None:
        interval = float(app.config["VIEWER_RECORD_SECONDS"])
        if interval <= 0:
            self.write(app)
            return
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        socketio.start_background_task(self._write_later, app, interval)

    def _write_later(self, app: Flask, interval: float) -> None:
        socketio.sleep(interval)
        with self._lock:
            self._scheduled = False
        self.write(app)

    def write(self, app: Flask) -> None:
        """Write what was noted; a failure is logged and its notes are dropped (the per-minute
        sampler records the count again; a lost visit only lowers "unique viewers")."""
        from shop.budgets import background

        with self._lock:
            visits, self._visits = self._visits, {}
            counts, self._counts = self._counts, {}
        if not visits and not counts:
            return
        with background(app):
            try:
                _write_visits(visits)
                for session_id, viewers in counts.items():
                    record_count(session_id, viewers)
            except Exception:  # noqa: BLE001 - the next notes get their own try
                log.exception("writing %d viewer visits failed", len(visits))
                db.session.rollback()


def _write_visits(visits: dict[tuple[int, str], tuple[int | None, str | None]]) -> None:
    """Insert the plain visits in one statement (a viewer already recorded is skipped by the
    unique key), then, one by one, the logged-in viewers' visits that take over their browser's
    (which may have been among the plain ones: watching, then logging in to buy)."""
    plain, taking_over = [], []
    for (session_id, viewer_key), (user_id, browser_key) in visits.items():
        if browser_key and browser_key != viewer_key:
            taking_over.append((session_id, viewer_key, user_id, browser_key))
        else:
            row = {"session_id": session_id, "viewer_key": viewer_key, "user_id": user_id}
            plain.append({**row, "first_seen": utcnow()})
    if plain:
        begin_write()
        dialect = db.session.get_bind().dialect.name
        insert_new = pg_insert if dialect == "postgresql" else sqlite_insert
        db.session.execute(
            insert_new(ViewerVisit)
            .values(plain)
            .on_conflict_do_nothing(index_elements=["session_id", "viewer_key"])
        )
        db.session.commit()
    for session_id, viewer_key, user_id, browser_key in taking_over:
        record_visit(session_id, viewer_key, user_id, browser_key=browser_key)


def ledger(app: Flask) -> ViewerLedger:
    found = app.extensions.get("farmlive.viewer_ledger")
    if found is None:
        found = app.extensions.setdefault("farmlive.viewer_ledger", ViewerLedger())
    return found


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
        interval = float(app.config["VIEWER_COUNT_INTERVAL"])
        wait = pacer.last_sent.get(session_id, 0.0) + interval - time.monotonic()
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
    from shop.budgets import background

    while True:
        socketio.sleep(60 - time.time() % 60 + 1)
        with background(app):
            try:
                live_ids = db.session.scalars(
                    select(LiveSession.id).where(LiveSession.status == SessionStatus.LIVE)
                ).all()
                for session_id in live_ids:
                    record_count(session_id, counter(app).count(session_id))
            except Exception:  # noqa: BLE001 - a sampler must outlive a database hiccup
                app.logger.exception("viewer sampler failed")
