"""Bounds on what one user or one address may do on /live: chat pace, joins and sockets.

Rates use the `limits` library over the app's rate-limit storage (RATELIMIT_STORAGE_URI: the
Redis of REDIS_URL when set, so every server process shares them; else this process's memory).
Each check is one atomic hit that counts and decides at once, so ten messages sent at the same
instant cannot all find the window empty. Sockets per address are counted in this process: a
socket lives in one process. The per-address bounds follow RATELIMIT_ENABLED like the login
limit; the chat pace is a rule of the chat and always applies (0 seconds turns it off).

While Redis is unavailable the rates are counted in this process's memory instead (logged once
when that starts and once when Redis is back): a chatter or an address spread over several
processes gets a little more, nobody is refused for want of Redis.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from functools import lru_cache

from flask import Flask, current_app
from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from shop.redis_link import Breaker, bounded_pool

STORAGE_ERRORS = (RedisError, StorageError, OSError)


class Throttle:
    """One app's limiter and its count of open sockets per client address."""

    def __init__(
        self,
        storage_uri: str,
        prefix: str,
        *,
        timeout: float = 1.0,
        retry_after: float = 5.0,
        size: int = 50,
    ) -> None:
        # limits' MemoryStorage makes a lock per key lazily; two threads hitting a new key at
        # once could each get their own. One lock in front keeps the memory path atomic.
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._guard = threading.Lock()
        self._shared: MovingWindowRateLimiter | None = None  # None: memory is the storage
        if not storage_uri.startswith("memory"):
            options = {}
            if storage_uri.startswith(("redis://", "rediss://")):
                options = {"connection_pool": bounded_pool(storage_uri, timeout, size)}
            elif storage_uri.startswith("valkey"):
                options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
            self._shared = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._breaker = Breaker("chat and join limits (counted per process meanwhile)", retry_after)
        self._prefix = prefix
        self._sockets: dict[str, str] = {}
        self._per_address: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, *key: str) -> bool:
        """Take one from `key`'s allowance; False (and nothing taken) when none is left.
        Counted in the shared storage, or in this process while that is unavailable."""
        if self._shared is not None and self._breaker.allows():
            try:
                allowed = self._shared.hit(item, self._prefix, *key)
            except STORAGE_ERRORS as err:
                self._breaker.failed(err)
            else:
                self._breaker.succeeded()
                return allowed
        with self._guard:
            return self._local.hit(item, self._prefix, *key)

    def open_socket(self, sid: str, address: str, most: int) -> bool:
        """Count a new socket from `address`; refuse it when `most` (> 0) are already open."""
        with self._lock:
            if 0 < most <= self._per_address[address]:
                return False
            self._sockets[sid] = address
            self._per_address[address] += 1
            return True

    def close_socket(self, sid: str) -> None:
        with self._lock:
            address = self._sockets.pop(sid, None)
            if address is None:
                return
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]


_making = threading.Lock()


def throttle(app: Flask | None = None) -> Throttle:
    """The app's one Throttle (made on first use; a crowd's first requests must share it)."""
    app = app or current_app._get_current_object()
    found = app.extensions.get("farmlive.live_throttle")
    if found is None:
        with _making:
            found = app.extensions.get("farmlive.live_throttle")
            if found is None:
                found = app.extensions["farmlive.live_throttle"] = Throttle(
                    app.config["RATELIMIT_STORAGE_URI"],
                    app.config["SOCKETIO_CHANNEL"],
                    timeout=app.config["REDIS_TIMEOUT_SECONDS"],
                    retry_after=app.config["REDIS_CHECK_SECONDS"],
                    size=app.config["REDIS_MAX_CONNECTIONS"],
                )
    return found


@lru_cache(maxsize=32)
def _rate(text: str) -> RateLimitItem:
    return parse(text)


def check_settings(app: Flask) -> None:
    """Refuse to start with a JOIN_RATE_LIMIT `limits` cannot read (e.g. "120 per minute")."""
    if app.config.get("JOIN_RATE_LIMIT"):
        _rate(app.config["JOIN_RATE_LIMIT"])


def allow_chat(user_id: int) -> bool:
    """One message per CHAT_RATE_LIMIT_SECONDS (rounded up to whole seconds) per user."""
    seconds = float(current_app.config.get("CHAT_RATE_LIMIT_SECONDS") or 0)
    if seconds <= 0:
        return True
    return throttle().hit(RateLimitItemPerSecond(1, math.ceil(seconds)), "chat", str(user_id))


def _bounded() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def allow_join(address: str) -> bool:
    """JOIN_RATE_LIMIT joins per client address, across every server process."""
    limit = current_app.config.get("JOIN_RATE_LIMIT")
    if not limit or not _bounded():
        return True
    return throttle().hit(_rate(limit), "join", address)


def open_socket(sid: str, address: str) -> bool:
    """At most SOCKET_CONNECTIONS_PER_ADDRESS sockets per client address in this process."""
    most = int(current_app.config.get("SOCKET_CONNECTIONS_PER_ADDRESS") or 0)
    return throttle().open_socket(sid, address, most if _bounded() else 0)


def close_socket(sid: str) -> None:
    throttle().close_socket(sid)
