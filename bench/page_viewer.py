"""A viewer that behaves like the live page (live/static/live.js) in a browser.

It opens the page (GET /live/<id>, which gives the browser its signed `farmlive_viewer` cookie,
kept in this viewer's own cookie jar), connects over WebSocket, and on every connect emits
`join` and, once joined, loads the chat history, as the page does. Unlike
`bench.clients.Viewer` it keeps going when things fail, the way a browser would:

- the first connection is retried with Socket.IO's back-off (1 s doubling to 10 s, ± 0.5 s);
- a dropped connection is re-established by python-socketio's own reconnection (the same
  back-off), and every reconnect joins again; each attempt waits up to CONNECT_TIMEOUT for the
  server, as socket.io-client does;
- a join that is refused, or not answered within JOIN_TIMEOUT, is tried again after a random
  wait of 0 .. min(10 s, 0.5 s x 2^attempt) ("full jitter").

Everything is recorded with `time.monotonic()` stamps: join attempts and their latency, failures
by error code, drops the viewer did not ask for (with the reason), the time each pin and each
chat message first reached it, the viewer count it would show, and the Engine.IO pings it got.
Every retry loop stops at `give_up_at`, which the phase sets.
"""

from __future__ import annotations

import asyncio
import random
import time
import types
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import engineio
import engineio.async_client
import socketio

NAMESPACE = "/live"
JOIN_TIMEOUT = 10.0  # an unanswered join counts as failed after this long
# How long a connection attempt waits for the server's answer before it counts as failed and
# the back-off starts: socket.io-client's `timeout` default. python-socketio's reconnection
# would wait 1 s (connect()'s default), and a busy server then never gets the chance to answer.
CONNECT_TIMEOUT = 20.0
# python-socketio's reconnection, set like the page's socket.io-client (delay 1 s, at most 10 s,
# randomization 0.5). python-socketio adds the randomization as ± 0.5 s rather than ± 50%.
RECONNECTION = {
    "reconnection": True,
    "reconnection_delay": 1,
    "reconnection_delay_max": 10,
    "randomization_factor": 0.5,
}
JOIN_BACKOFF_BASE, JOIN_BACKOFF_MAX = 0.5, 10.0
# Room news the page shows but the benchmark does not measure. Each viewer still receives it
# (the servers send exactly what they send to browsers), but leaves it undecoded: decoding
# 1,200 copies of every sale in this one process made the client, not the servers, the place
# where pins waited (the servers had written the pin to every socket within ~1 s of the tap;
# the client read it ~4 s later). A phone decodes its own copy on its own CPU.
UNREAD = tuple(f'2{NAMESPACE},["{event}"' for event in ("sale", "stock", "message_update"))


async def _wait_for(awaitable, timeout):
    """`asyncio.wait_for` without the Task that Python 3.11's wraps around every call."""
    async with asyncio.timeout(timeout):
        return await awaitable


def wait_for_frames_cheaply() -> None:
    """python-engineio's client awaits every frame through `asyncio.wait_for`, which makes a
    Task per frame: with 1,200 viewers in this one process that was an eighth of the client's
    CPU, spent while the servers' frames queued up in front of the pins it times. Its module
    gets an `asyncio` whose `wait_for` is the same deadline without the Task (the rest is
    asyncio's own); the timeouts and their errors are unchanged."""
    engineio.async_client.asyncio = types.SimpleNamespace(
        **{**vars(asyncio), "wait_for": _wait_for}
    )


def full_jitter(attempt: int, rng: random.Random) -> float:
    """Seconds before join retry `attempt` (0-based): uniform in 0 .. min(10, 0.5 x 2^attempt)."""
    return rng.uniform(0, min(JOIN_BACKOFF_MAX, JOIN_BACKOFF_BASE * 2**attempt))


def reconnect_delay(attempt: int, rng: random.Random) -> float:
    """Seconds before connection attempt `attempt` + 1, as python-socketio's reconnection waits."""
    delay = min(
        RECONNECTION["reconnection_delay"] * 2**attempt, RECONNECTION["reconnection_delay_max"]
    )
    return max(0.0, delay + RECONNECTION["randomization_factor"] * (2 * rng.random() - 1))


class _PingTimedEngineIO(engineio.AsyncClient):
    """Engine.IO client that notes when each connection opened and each server PING arrived
    (the server sends one every ping_interval and drops the socket if no PONG comes back)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.opened: list[float] = []
        self.pings: list[float] = []

    async def _trigger_event(self, event, *args, **kwargs):
        if event == "connect":
            self.opened.append(time.monotonic())
        return await super()._trigger_event(event, *args, **kwargs)

    async def _receive_packet(self, pkt) -> None:
        if pkt.packet_type == engineio.packet.PING:
            self.pings.append(time.monotonic())
        elif isinstance(pkt.data, str) and pkt.data.startswith(UNREAD):
            return  # received and left unread (UNREAD)
        await super()._receive_packet(pkt)


class Client(socketio.AsyncClient):
    """python-socketio's client with the browser's connect timeout, also for its own
    reconnection attempts, and a count of why attempts failed."""

    def __init__(self, failures: Counter, **kwargs) -> None:
        super().__init__(**kwargs)
        self.failures = failures

    def _engineio_client_class(self):
        return _PingTimedEngineIO

    async def connect(self, *args, wait_timeout: float = CONNECT_TIMEOUT, **kwargs) -> None:
        try:
            await super().connect(*args, wait_timeout=wait_timeout, **kwargs)
        except Exception as err:
            self.failures[_reason(err)] += 1
            raise


@dataclass
class JoinRecord:
    emitted: float
    answered: float


@dataclass
class PageViewer:
    """One browser tab on the live page. `url` is the server process it is sticky to."""

    index: int
    url: str
    session_id: int
    http: aiohttp.ClientSession
    give_up_at: float = 0.0
    client: socketio.AsyncClient = field(init=False)
    rng: random.Random = field(init=False)
    arrived_at: float | None = None  # when it opened the page
    page_seconds: float | None = None
    joined: bool = False
    first_join_emitted: float | None = None
    joins: list[JoinRecord] = field(default_factory=list)
    join_failures: Counter = field(default_factory=Counter)  # error code -> failed attempts
    connect_failures: Counter = field(default_factory=Counter)
    drops: list[tuple[float, str]] = field(default_factory=list)  # (when, reason)
    pins: dict[int, float] = field(default_factory=dict)  # pin id -> first time known
    messages: dict[int, float] = field(default_factory=dict)  # message id -> first time known
    shown_count: int | None = None  # the viewer count the page would show
    closing: bool = False
    _join_task: asyncio.Task | None = None
    _history_task: asyncio.Task | None = None  # kept: asyncio holds tasks only weakly

    def __post_init__(self) -> None:
        self.rng = random.Random(self.index)
        self.client = Client(
            self.connect_failures, http_session=self.http, handle_sigint=False, **RECONNECTION
        )
        on = self.client.on
        on("connect", self._on_connect, namespace=NAMESPACE)
        on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        on("pinned", self._on_pinned, namespace=NAMESPACE)
        on("message", self._on_message, namespace=NAMESPACE)
        on("viewers", self._on_viewers, namespace=NAMESPACE)

    def ping_gaps(self) -> list[float]:
        """Seconds from each connection's opening or previous PING to the next PING, on one
        unbroken connection (ping_interval when the server keeps time)."""
        marks = sorted(
            [(t, "open") for t in self.client.eio.opened]
            + [(t, "ping") for t in self.client.eio.pings]
            + [(t, "drop") for t, _ in self.drops]
        )
        gaps, previous = [], None
        for moment, kind in marks:
            if kind == "ping" and previous is not None:
                gaps.append(moment - previous)
            previous = moment if kind != "drop" else None
        return gaps

    def pinged_since_open(self) -> bool:
        eio = self.client.eio
        return bool(eio.opened and eio.pings and eio.pings[-1] > eio.opened[-1])

    # --- what the browser does ----------------------------------------------------------------

    async def arrive(self) -> None:
        """Open the page, then connect (retrying) until joined or `give_up_at`."""
        self.arrived_at = time.monotonic()
        if not await self._open_page():
            return
        for attempt in range(1_000):
            if time.monotonic() >= self.give_up_at:
                return
            try:
                await self.client.connect(
                    self.url, namespaces=[NAMESPACE], transports=["websocket"]
                )
                break
            except Exception:  # noqa: BLE001 - counted by the client; any failure is retried
                await self._sleep_until_or_give_up(reconnect_delay(attempt, self.rng))
        while not self.joined and time.monotonic() < self.give_up_at:
            await asyncio.sleep(0.1)

    async def _open_page(self) -> bool:
        """GET /live/<id> until it answers 200 (a user reloads a failed page), or give up."""
        for attempt in range(1_000):
            started = time.monotonic()
            try:
                async with self.http.get(f"{self.url}/live/{self.session_id}") as response:
                    await response.read()
                    if response.status == 200:
                        self.page_seconds = time.monotonic() - started
                        return True
                    self.connect_failures[f"page {response.status}"] += 1
            except (TimeoutError, aiohttp.ClientError) as err:
                self.connect_failures[f"page {_reason(err)}"] += 1
            if not await self._sleep_until_or_give_up(reconnect_delay(attempt, self.rng)):
                return False
        return False

    async def _sleep_until_or_give_up(self, seconds: float) -> bool:
        left = self.give_up_at - time.monotonic()
        await asyncio.sleep(max(0.0, min(seconds, left)))
        return time.monotonic() < self.give_up_at

    async def _on_connect(self) -> None:
        # The handler runs inside the client's receive path: the join must not be awaited here.
        if self._join_task is not None and not self._join_task.done():
            self._join_task.cancel()
        self._join_task = asyncio.create_task(self._join_until_joined())

    async def _join_until_joined(self) -> None:
        for attempt in range(1_000):
            if NAMESPACE not in self.client.namespaces or time.monotonic() >= self.give_up_at:
                return
            emitted = time.monotonic()
            if self.first_join_emitted is None:
                self.first_join_emitted = emitted
            try:
                ack = await self.client.call(
                    "join",
                    {"session_id": self.session_id},
                    namespace=NAMESPACE,
                    timeout=JOIN_TIMEOUT,
                )
            except socketio.exceptions.TimeoutError:
                ack = {"error": {"code": "no ack in 10 s"}}
            except socketio.exceptions.SocketIOError as err:
                ack = {"error": {"code": f"not connected ({type(err).__name__})"}}
            if isinstance(ack, dict) and ack.get("ok"):
                now = time.monotonic()
                self.joins.append(JoinRecord(emitted, now))
                self.joined = True
                self.shown_count = ack["state"]["viewers"]
                pinned = ack["state"]["pinned"]
                if pinned:
                    self._know_pin(int(pinned["id"]), now)
                # as the page: the chat so far once in the room, so nothing falls between
                self._history_task = asyncio.create_task(self._load_history())
                return
            error = ack.get("error") if isinstance(ack, dict) else None
            self.join_failures[(error or {}).get("code") or f"bad ack {ack!r:.40}"] += 1
            if not await self._sleep_until_or_give_up(full_jitter(attempt, self.rng)):
                return

    async def _load_history(self) -> None:
        """The page lists the chat so far after every successful join (loadMessages)."""
        url = f"{self.url}/api/v1/live-sessions/{self.session_id}/messages"
        try:
            async with self.http.get(url) as response:
                body = await response.json(content_type=None)
        except (TimeoutError, ValueError, aiohttp.ClientError):
            return
        now = time.monotonic()
        for item in (body or {}).get("items", []):
            self.messages.setdefault(int(item["id"]), now)

    async def _on_disconnect(self, reason=None) -> None:
        self.joined = False
        if self._join_task is not None and not self._join_task.done():
            self._join_task.cancel()  # its ack can no longer come; the reconnect joins again
            self.join_failures["dropped while joining"] += 1
        if not self.closing:
            self.drops.append((time.monotonic(), str(reason)))

    async def _on_pinned(self, data: dict) -> None:
        if data.get("session_id") == self.session_id:
            self._know_pin(int(data["pin"]["id"]), time.monotonic())

    def _know_pin(self, pin_id: int, when: float) -> None:
        self.pins.setdefault(pin_id, when)

    async def _on_message(self, data: dict) -> None:
        self.messages.setdefault(int(data["id"]), time.monotonic())

    async def _on_viewers(self, data: dict) -> None:
        if data.get("session_id") == self.session_id:
            self.shown_count = int(data["count"])

    # --- what the benchmark does to it ---------------------------------------------------------

    def joined_since(self, moment: float) -> float | None:
        """When it was last joined after `moment` (None if it is not joined now)."""
        if not self.joined or not self.joins or self.joins[-1].answered < moment:
            return None
        return self.joins[-1].answered

    async def cut_connection(self) -> None:
        """Close the WebSocket under the client, as a network drop would: it reconnects itself."""
        ws = getattr(self.client.eio, "ws", None)
        if ws is not None and not ws.closed:
            await ws.close()

    async def close(self) -> None:
        self.closing = True
        self.give_up_at = 0.0
        if self._join_task is not None:
            self._join_task.cancel()
        try:
            await asyncio.wait_for(self.client.disconnect(), 10)
        except Exception:  # noqa: BLE001 - closing at the end: nothing left to measure
            pass
        await self.http.close()


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text[:60]


def browser_session(connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
    """A browser's own cookie jar over the benchmark's shared connection pool."""
    return aiohttp.ClientSession(
        connector=connector,
        connector_owner=False,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=30),
    )
