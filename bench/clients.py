"""Async clients for the benchmark: logged-in buyers over HTTP and Socket.IO viewers.

Everything here is bounded: each loop has a count or a deadline, and every request a timeout.
Clients may bind to different loopback source addresses (127.0.K.1) so an nginx `ip_hash`
upstream spreads them over the server processes the way it spreads real users.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import socketio

ADDRESS = {"name": "Bench Buyer", "phone": "13800000000", "region": "新疆 尉犁县", "detail": "1号"}
TIMEOUT = aiohttp.ClientTimeout(total=30)


def connector(source_group: int | None) -> aiohttp.TCPConnector:
    """Unlimited connections, optionally from loopback source address 127.0.<group>.1."""
    local = (f"127.0.{source_group % 250 + 1}.1", 0) if source_group is not None else None
    return aiohttp.TCPConnector(limit=0, local_addr=local, force_close=False)


class Browser:
    """One user's browser: its own cookie jar (Flask session) and CSRF token."""

    def __init__(self, base_url: str, source_group: int | None = None) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(
            connector=connector(source_group),
            timeout=TIMEOUT,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )
        self.csrf = ""

    async def login(self, email: str, password: str) -> None:
        await self.refresh_csrf()
        status, body, _ = await self.request(
            "POST", "/auth/login", {"email": email, "password": password}
        )
        if status != 200:
            raise RuntimeError(f"login {email}: {status} {body}")
        await self.refresh_csrf()  # a new session gets a new token

    async def refresh_csrf(self) -> None:
        status, body, _ = await self.request("GET", "/auth/csrf")
        if status != 200:
            raise RuntimeError(f"csrf token: {status} {body}")
        self.csrf = body["csrf_token"]

    async def request(
        self, method: str, path: str, json: dict | None = None, *, headers=None, csrf=True
    ) -> tuple[int, dict, float]:
        """(status, JSON body or {}, seconds). Network failures come back as status 0."""
        url = self.base_url + ("/api/v1" + path if not path.startswith("/webhooks") else path)
        all_headers = dict(headers or {})
        if method != "GET" and csrf and self.csrf:
            all_headers["X-CSRFToken"] = self.csrf
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                async with self.http.request(
                    method, url, json=json, headers=all_headers
                ) as response:
                    try:
                        body = await response.json(content_type=None)
                    except (ValueError, aiohttp.ContentTypeError):
                        body = {}
                    return response.status, body or {}, time.monotonic() - started
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as err:
                # A kept-alive connection the server had just closed: resend once, as a browser
                # does (checkout carries its Idempotency-Key, so a resend is never a second order).
                if attempt == 2:
                    return 0, {"error": repr(err)}, time.monotonic() - started
            except (TimeoutError, aiohttp.ClientError) as err:
                return 0, {"error": repr(err)}, time.monotonic() - started
        raise AssertionError("unreachable")

    async def checkout(self, session_id: int, variant_id: int) -> tuple[int, dict, float]:
        return await self.request(
            "POST",
            f"/live-sessions/{session_id}/checkout",
            {"variant_id": variant_id, "quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )

    async def close(self) -> None:
        await self.http.close()


async def login_all(
    urls: list[str], emails: list[str], password: str, *, groups: int | None = None
) -> list[Browser]:
    """Log every buyer in, a few at a time (each login is a deliberate scrypt check)."""
    browsers = [
        Browser(urls[i % len(urls)], (i % groups) if groups else None) for i in range(len(emails))
    ]
    gate = asyncio.Semaphore(8)

    async def one(browser: Browser, email: str) -> None:
        async with gate:
            await browser.login(email, password)

    await asyncio.gather(*(one(b, e) for b, e in zip(browsers, emails, strict=True)))
    return browsers


# --- viewers -----------------------------------------------------------------------------------


# A dropped viewer is counted (Viewer.dropped), not logged once per client by engine.io.
logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
logging.getLogger("socketio.client").setLevel(logging.CRITICAL)


@dataclass
class Viewer:
    client: socketio.AsyncClient
    pinned_at: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, product id)
    events: int = 0
    dropped: bool = False


async def connect_viewers(
    urls: list[str],
    count: int,
    session_id: int,
    *,
    groups: int | None = None,
    websocket_only: bool = True,
    timeout: float = 120.0,
) -> tuple[list[Viewer], list[aiohttp.ClientSession], int]:
    """Connect `count` viewers (50 handshakes at a time) and join the session's room."""
    sessions = [
        aiohttp.ClientSession(connector=connector(g if groups else None))
        for g in range(groups or 1)
    ]
    viewers: list[Viewer] = []
    failures = 0
    gate = asyncio.Semaphore(50)
    deadline = time.monotonic() + timeout

    async def one(index: int) -> None:
        nonlocal failures
        viewer = Viewer(
            socketio.AsyncClient(reconnection=False, http_session=sessions[index % len(sessions)])
        )

        async def on_pinned(data: dict) -> None:
            viewer.pinned_at.append((time.monotonic(), int(data["pin"]["product"]["id"])))

        async def on_other(*_args) -> None:
            viewer.events += 1

        async def on_disconnect(*_args) -> None:
            viewer.dropped = True

        viewer.client.on("pinned", on_pinned, namespace="/live")
        viewer.client.on("disconnect", on_disconnect, namespace="/live")
        for name in ("stock", "sale", "viewers", "unpinned", "status", "message"):
            viewer.client.on(name, on_other, namespace="/live")
        async with gate:
            if time.monotonic() > deadline:
                failures += 1
                return
            try:
                await viewer.client.connect(
                    urls[index % len(urls)],
                    namespaces=["/live"],
                    transports=["websocket"] if websocket_only else ["polling", "websocket"],
                    wait_timeout=15,
                )
                ack = await viewer.client.call(
                    "join", {"session_id": session_id}, namespace="/live", timeout=15
                )
                if not (isinstance(ack, dict) and ack.get("ok")):
                    raise RuntimeError(f"join refused: {ack}")
                viewers.append(viewer)
            except Exception:
                failures += 1
                await viewer.client.disconnect()

    await asyncio.gather(*(one(i) for i in range(count)))
    return viewers, sessions, failures


async def disconnect_viewers(viewers: list[Viewer], sessions: list[aiohttp.ClientSession]) -> None:
    gate = asyncio.Semaphore(100)

    async def one(viewer: Viewer) -> None:
        async with gate:
            try:
                await asyncio.wait_for(viewer.client.disconnect(), 10)
            except Exception:
                pass

    await asyncio.gather(*(one(v) for v in viewers))
    for session in sessions:
        await session.close()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of a list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# --- load --------------------------------------------------------------------------------------


async def flash_crowd(
    buyers: list[Browser], session_id: int, variant_id: int, window: float = 2.0
) -> list[tuple[Browser, int, dict, float]]:
    """Every buyer taps once at a random moment within `window` seconds."""
    import random

    rng = random.Random(7)
    offsets = sorted(rng.uniform(0, window) for _ in buyers)

    async def tap(buyer: Browser, offset: float):
        await asyncio.sleep(offset)
        status, body, seconds = await buyer.checkout(session_id, variant_id)
        return buyer, status, body, seconds

    return await asyncio.gather(*(tap(b, o) for b, o in zip(buyers, offsets, strict=True)))


async def sustained(
    buyers: list[Browser],
    session_id: int,
    variant_id: int,
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> dict:
    """`concurrency` buyers tap checkout back to back; counts only what lands in the window."""

    async def tap(index: int) -> tuple[int, float]:
        status, _body, took = await buyers[index % len(buyers)].checkout(session_id, variant_id)
        return status, took

    return await _back_to_back(tap, concurrency=concurrency, seconds=seconds, warmup=warmup)


async def sustained_minimal(
    base_url: str, *, concurrency: int, seconds: float, warmup: float = 1.0
) -> dict:
    """The same load on bench.minimal_app: plain JSON POSTs, no login, session or CSRF token."""
    client = Browser(base_url)

    async def tap(index: int) -> tuple[int, float]:
        status, _body, took = await client.request("POST", "/checkout", {"buyer": index})
        return status, took

    try:
        return await _back_to_back(tap, concurrency=concurrency, seconds=seconds, warmup=warmup)
    finally:
        await client.close()


async def _back_to_back(tap, *, concurrency: int, seconds: float, warmup: float) -> dict:
    """`concurrency` workers call `tap(index)` back to back; 200/201 in the window are orders."""
    started = time.monotonic()
    window_start = started + warmup
    deadline = window_start + seconds
    ok_latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(index: int) -> None:
        for _ in range(1_000_000):
            if time.monotonic() >= deadline:
                return
            status, took = await tap(index)
            finished = time.monotonic()
            if window_start <= finished < deadline:
                statuses[status] = statuses.get(status, 0) + 1
                if status in (200, 201):
                    ok_latencies.append(took)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    ok = len(ok_latencies)
    return {
        "rps": round(ok / seconds, 1),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": ms(percentile(ok_latencies, 50)),
        "p99_ms": ms(percentile(ok_latencies, 99)),
    }
