"""Redis that fails fast and is watched: client options, a breaker, and the Socket.IO queue.

Nothing a visitor needs depends on Redis (README "Outages: what a user sees"): each
part that uses it (Socket.IO news between processes, viewer counts, chat and join limits, login
limits) gives up on a call after REDIS_TIMEOUT_SECONDS and goes on without Redis; a `Breaker`
then keeps that part off Redis for REDIS_CHECK_SECONDS, so during an outage one call per
interval waits out the timeout instead of every request.

The Socket.IO listener is the part that must notice a *silent* Redis. python-socketio's
RedisManager listens with redis-py's `listen()`, which blocks on its socket with no timeout: a
connection black-holed by the network, or left half-open when Redis came back, never fails, and
news from the other processes stops for good while every check says ok. `CheckedRedisManager`
polls instead, pings its own subscription every REDIS_CHECK_SECONDS, reconnects when nothing
answers within REDIS_TIMEOUT_SECONDS, and reports each sign of life to /healthz
(`socketio_listener`), which turns 503 when the listener has heard nothing for a while.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.retry import Retry
from socketio import RedisManager

log = logging.getLogger(__name__)

LISTENER_CHECK = "socketio_listener"  # its name in /healthz
_PING = b"farmlive-listener"


def client_options(timeout: float) -> dict[str, Any]:
    """redis-py options for calls that give up after `timeout` seconds.

    Connecting and every read are bounded; a pooled connection found closed is retried once at
    once on a fresh one (a restart), a timeout never (that would double the wait); TCP
    keepalive is on. redis-py's own default waits 5 s per read.
    """
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def bounded_pool(url: str, timeout: float, size: int):
    """A connection pool of at most `size` connections with `client_options(timeout)`; a call
    that finds none free waits for one up to `timeout`.

    redis-py's own pool raises at once past 100 connections ("Too many connections"), and under
    gevent a storm of joins makes hundreds of calls at the same moment: each part that uses
    Redis would then fail over to its local fallback for no reason but its own crowd.
    """
    import redis

    return redis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=timeout, **client_options(timeout)
    )


class Breaker:
    """Keeps one part off Redis for `pause` seconds after a failure; logged when Redis goes
    away and when it is back, not at every call."""

    def __init__(self, part: str, pause: float) -> None:
        self.part = part
        self.pause = pause
        self._until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def allows(self) -> bool:
        """True when the part may try Redis now."""
        return time.monotonic() >= self._until

    def failed(self, err: BaseException) -> None:
        with self._lock:
            first, self._down = not self._down, True
            self._until = time.monotonic() + self.pause
        if first:
            log.warning(
                "%s: Redis unavailable (%s: %s); going on without it, trying again every %g s",
                self.part,
                type(err).__name__,
                err,
                self.pause,
            )

    def succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            back, self._down, self._until = self._down, False, 0.0
        if back:
            log.warning("%s: Redis is back", self.part)


class CheckedRedisManager(RedisManager):
    """python-socketio's RedisManager with a listener that notices a silent Redis, reconnects
    and reports to /healthz, and a publish that gives up fast and never fails its caller.

    An emit reaches this process's own clients first (PubSubManager does that), then is
    published for the other processes; while Redis is unavailable that second part is skipped.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        timeout: float,
        interval: float,
        size: int = 50,
        app: Flask | None = None,
    ) -> None:
        options = {**client_options(timeout), "health_check_interval": interval}
        super().__init__(url, channel=channel, redis_options=options)
        self.timeout = timeout
        self.size = size
        self.interval = interval
        # /healthz: nothing heard for two pings and a timeout (the ping itself re-connecting)
        self.stale_after = 2 * interval + timeout
        self._app = app
        self._publishing = Breaker("Socket.IO news to other processes", interval)
        self._deaf = False  # the listener lost Redis and has not heard from it since
        # Called with (event, data, namespace) for each emit another process sends, before its
        # delivery here: what a process keeps of the news (live.rooms) stays current.
        self.news_listeners: list[Callable[[str, Any, str | None], None]] = []

    def _handle_emit(self, message: dict) -> None:
        data = message.get("data")
        if isinstance(data, list) and len(data) == 1:
            data = data[0]  # one argument travels as a list of one, as python-socketio sends it
        for listener in list(self.news_listeners):
            try:
                listener(message.get("event"), data, message.get("namespace"))
            except Exception:  # noqa: BLE001 - a listener never stops the news
                log.exception("a news listener failed on %r", message.get("event"))
        super()._handle_emit(message)

    def initialize(self) -> None:
        """Starts the listener (python-socketio does this at the first connection)."""
        if self._app is not None and not self.write_only:
            from shop.health import expect_loop

            expect_loop(self._app, LISTENER_CHECK, self.interval, stale_after=self.stale_after)
        super().initialize()

    def _client(self, *, listening: bool = False):
        redis = self._get_redis_module()
        if listening:  # the listener pings by itself and must see whether the answer comes
            options = dict(self.redis_options)
            options.pop("health_check_interval", None)
            return redis.Redis.from_url(self.redis_url, **options)
        return redis.Redis(connection_pool=bounded_pool(self.redis_url, self.timeout, self.size))

    def _publish(self, data: Any) -> None:
        if self._deaf or not self._publishing.allows():
            return  # Redis is known to be away: this process's clients have the news already
        try:
            if self.redis is None:
                self.redis = self._client()
            self.redis.publish(self.channel, self.json.dumps(data))
        except RedisError as err:
            self._publishing.failed(err)
        else:
            self._publishing.succeeded()

    def _listen(self) -> Iterator[bytes]:
        channel = self.channel.encode("utf-8")
        for message in self._messages():
            if message["type"] == "message" and message["channel"] == channel:
                yield message["data"]

    def _messages(self) -> Iterator[dict]:
        """The subscription's messages for as long as the process runs, reconnecting after any
        failure (a pause of up to REDIS_CHECK_SECONDS between tries)."""
        failures = 0
        while True:
            client = pubsub = None
            try:
                client = self._client(listening=True)
                pubsub = client.pubsub()
                pubsub.subscribe(self.channel)
                for message in self._receive(pubsub):
                    if failures:
                        log.warning("Socket.IO listener: subscribed to Redis again")
                        failures, self._deaf = 0, False
                        self._publishing.succeeded()
                    yield message
            except Exception as err:  # noqa: BLE001 - the listener must outlive anything
                failures += 1
                self._deaf = True  # no publishing either until the listener hears Redis again
                self._publishing.failed(err)
                if not isinstance(err, RedisError):
                    log.exception("Socket.IO listener failed; reconnecting")
                elif failures == 1:
                    log.warning(
                        "Socket.IO listener: lost Redis (%s: %s); news from other processes "
                        "is missed until it reconnects",
                        type(err).__name__,
                        err,
                    )
            finally:
                _close_quietly(pubsub, client)
            self.server.sleep(min(self.interval, 0.25 * 2**failures))

    def _receive(self, pubsub) -> Iterator[dict]:
        """Yield every message (the subscribe confirmation and pongs too: each is a sign of
        life); ping when the connection has been quiet for REDIS_CHECK_SECONDS; raise when a
        ping goes unanswered for REDIS_TIMEOUT_SECONDS."""
        wait = min(self.interval, self.timeout) / 2
        heard = pinged = None
        while True:
            message = pubsub.get_message(timeout=wait)
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, None
                self._alive()
                yield message
                continue
            if pinged is not None:
                if now - pinged > self.timeout:
                    raise RedisTimeout(f"no answer to a ping in {self.timeout:g} s")
            elif heard is None or now - heard >= self.interval:
                pubsub.ping(_PING)
                pinged = now

    def _alive(self) -> None:
        if self._app is not None:
            from shop.health import loop_passed

            loop_passed(self._app, LISTENER_CHECK)


def _close_quietly(*things: Any) -> None:
    """Drop a connection that may be dead: closing only releases local sockets."""
    for thing in things:
        if thing is None:
            continue
        try:
            thing.close()
        except Exception:  # noqa: BLE001 - a dead connection may refuse even to close
            pass


def socketio_queue(app: Flask) -> dict[str, Any]:
    """Flask-SocketIO `init_app` arguments for REDIS_URL: the checked manager for a redis://
    URL, Flask-SocketIO's own choice for another queue, an in-process manager without one
    (given explicitly, so an app built earlier in this process cannot leave its queue behind)."""
    url = app.config.get("REDIS_URL")
    if not url:
        return {"client_manager": None}
    channel = app.config["SOCKETIO_CHANNEL"]
    if not url.startswith(("redis://", "rediss://")):
        return {"message_queue": url, "channel": channel}
    manager = CheckedRedisManager(
        url,
        channel=channel,
        timeout=app.config["REDIS_TIMEOUT_SECONDS"],
        interval=app.config["REDIS_CHECK_SECONDS"],
        size=app.config["REDIS_MAX_CONNECTIONS"],
        app=app,
    )
    return {"client_manager": manager}
