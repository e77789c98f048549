"""The arrival phase of `python -m bench.flash_sale --arrival N --arrival-seconds T` (issue 14),
and what it shares with the storm (bench.storm).

N page viewers (`bench.page_viewer`) open the page and join at a steady rate over T seconds,
spread over the server processes, while the host pins three times (at 0.3 T, 0.6 T and
T + 1 s), the flash crowd taps at 0.4 T and pays, and `--questions` logged-in buyers ask a
question each over T + 2 s, every other one marked answered by the host a second later. Then
the crowd is held until each viewer got its first Engine.IO ping (the server's liveness check,
ping_interval after connecting), counting drops meanwhile.

Every wait has a deadline: a viewer stops trying GIVE_UP_SECONDS after it arrived, a pin's
misses are counted after PIN_MISS_SECONDS, the count convergence is watched for
COUNT_WAIT_SECONDS, the hold ends 20 s after the first pings were due.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bench.clients import Browser, ms, percentile
from bench.meters import Meters
from bench.page_viewer import PageViewer, browser_session
from bench.setup_data import BenchData

GIVE_UP_SECONDS = 30.0
PIN_TARGET_SECONDS = 2.0
PIN_MISS_SECONDS = 5.0
COUNT_WAIT_SECONDS = 20.0
PING_INTERVAL = 25.0  # python-engineio's default, which the app keeps


@dataclass
class Crowd:
    """The arrival's viewers and the connection pool their browsers share."""

    viewers: list[PageViewer]
    connector: aiohttp.TCPConnector

    async def close(self) -> None:
        gate = asyncio.Semaphore(100)

        async def one(viewer: PageViewer) -> None:
            async with gate:
                await viewer.close()

        await asyncio.gather(*(one(v) for v in self.viewers))
        await self.connector.close()


@dataclass
class Scene:
    """What both phases act with: the servers, the host, the buyers and the meters."""

    args: argparse.Namespace
    data: BenchData
    urls: list[str]
    servers: list
    host: Browser
    buyers: list[Browser]
    flash: Callable[[], Awaitable[dict]]  # phase (3): the taps, then the winners pay
    meters: Meters


async def sleep_until(moment: float) -> None:
    """Sleep until the monotonic `moment` (at once if it has passed): phases run on a timeline."""
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


def stats(prefix: str, seconds: list[float]) -> dict:
    """`<prefix>_p50_ms`, `_p99_ms` and `_max_ms` of a list of seconds (None when empty)."""
    return {
        f"{prefix}_p50_ms": ms(percentile(seconds, 50)),
        f"{prefix}_p99_ms": ms(percentile(seconds, 99)),
        f"{prefix}_max_ms": ms(max(seconds) if seconds else None),
    }


def counters(viewers: list[PageViewer], name: str) -> Counter:
    """The viewers' Counters called `name` (failures by reason), added up."""
    total: Counter = Counter()
    for viewer in viewers:
        total.update(getattr(viewer, name))
    return total


# --- the arrival phase ---------------------------------------------------------------------------


async def arrival(scene: Scene, count: int, seconds: float) -> tuple[dict, Crowd]:
    """N viewers arrive over T seconds during the sale; returns the figures and the viewers."""
    sid = scene.data.session_id
    connector = aiohttp.TCPConnector(limit=0)
    viewers = [
        PageViewer(i, scene.urls[i % len(scene.urls)], sid, browser_session(connector))
        for i in range(count)
    ]
    await pin(scene.host, sid, scene.data.flash_product_id)  # what the first arrivals see
    scene.meters.mark()
    start = time.monotonic()
    arrivals = []
    for i, viewer in enumerate(viewers):
        offset = i * seconds / count
        viewer.give_up_at = start + offset + GIVE_UP_SECONDS
        arrivals.append(asyncio.create_task(_arrive_at(viewer, start + offset)))
    pin_moments = [start + 0.3 * seconds, start + 0.6 * seconds, start + seconds + 1.0]
    pins = asyncio.create_task(_pins_at(scene, pin_moments))
    sale = asyncio.create_task(_sale_at(scene, start + 0.4 * seconds))
    questions = asyncio.create_task(_questions(scene, start, seconds + 2.0))
    await asyncio.gather(*arrivals)
    last_join = max((v.joins[0].answered for v in viewers if v.joins), default=start)
    counting = asyncio.create_task(
        count_converges(scene, viewers, since=last_join, wait=COUNT_WAIT_SECONDS)
    )
    pinned = await pins
    sale_result = await sale
    posted = await questions
    await sleep_until(max(p.sent for p in pinned) + PIN_MISS_SECONDS)
    end = time.monotonic()
    counted = await counting
    out = {
        "viewers": count,
        "seconds": seconds,
        **_join_figures(viewers),
        **_drop_figures(viewers, start, end),
        "pins": [_pin_reach(viewers, p) for p in pinned],
        **_question_figures(viewers, posted),
        "viewer_count": counted,
        **await scene.meters.read(),
    }
    out["pin_worst_all_reached_ms"] = _worst_pin(out["pins"])
    out["first_pings"] = await _hold_until_pinged(viewers, end)
    return {"arrival": out, **sale_result}, Crowd(viewers, connector)


async def _hold_until_pinged(viewers: list[PageViewer], since: float) -> dict:
    """Keep the crowd connected until every joined viewer got its first Engine.IO PING (sent
    PING_INTERVAL after it connected; its PONG must come back within the ping timeout), or
    PING_INTERVAL + 20 s after the last connection opened; the drops meanwhile."""
    opened = [v.client.eio.opened[-1] for v in viewers if v.client.eio.opened]
    deadline = max(opened, default=since) + PING_INTERVAL + 20.0
    while time.monotonic() < deadline:
        if all(v.pinged_since_open() for v in viewers if v.joined):
            break
        await asyncio.sleep(0.5)
    end = time.monotonic()
    return {
        "held_s": round(end - since, 1),
        "viewers_pinged": sum(1 for v in viewers if v.pinged_since_open()),
        **_drop_figures(viewers, since, end),
        **ping_lateness(viewers),
    }


async def _arrive_at(viewer: PageViewer, moment: float) -> None:
    await sleep_until(moment)
    await viewer.arrive()


@dataclass
class PinTap:
    """One pin by the host: its id (0 when refused), when the tap left, the HTTP status."""

    pin_id: int
    sent: float
    status: int


async def pin(host: Browser, session_id: int, product_id: int) -> PinTap:
    """The host pins the product (limit 1 per buyer), as the console does."""
    started = time.monotonic()
    status, body, _ = await host.request(
        "POST",
        f"/live-sessions/{session_id}/pins",
        {"product_id": product_id, "per_buyer_limit": 1},
    )
    return PinTap(int(body["id"]) if status == 201 else 0, started, status)


async def _pins_at(scene: Scene, moments: list[float]) -> list[PinTap]:
    """Re-pin the flash product at each moment (same product: the crowd's taps stay valid)."""
    done = []
    for moment in moments:
        await sleep_until(moment)
        done.append(await pin(scene.host, scene.data.session_id, scene.data.flash_product_id))
    return done


async def _sale_at(scene: Scene, moment: float) -> dict:
    await sleep_until(moment)
    return await scene.flash()


async def _questions(scene: Scene, start: float, span: float) -> dict:
    """`--questions` buyers ask one question each, evenly over `span`; the host marks every
    other one answered a second later."""
    sid = scene.data.session_id
    count = min(scene.args.questions, len(scene.buyers))
    posted: list[int] = []
    statuses: Counter = Counter()

    async def ask(i: int) -> None:
        await sleep_until(start + i * span / max(1, count))
        status, body, _ = await scene.buyers[i].request(
            "POST",
            f"/live-sessions/{sid}/messages",
            {"body": f"Bench question {i}: 多少钱一公斤？", "kind": "question"},
        )
        statuses[f"ask_{status}"] += 1
        if status != 201:
            return
        posted.append(int(body["id"]))
        if i % 2 == 0:
            await asyncio.sleep(1.0)
            status, _, _ = await scene.host.request(
                "PATCH", f"/live-sessions/{sid}/messages/{body['id']}", {"answered": True}
            )
            statuses[f"answer_{status}"] += 1

    await asyncio.gather(*(ask(i) for i in range(count)))
    return {"ids": posted, "statuses": dict(statuses)}


def _join_figures(viewers: list[PageViewer]) -> dict:
    joined = [v for v in viewers if v.joins]
    return {
        "joined": len(joined),
        "never_joined": len(viewers) - len(joined),
        **stats("join", [v.joins[0].answered - v.joins[0].emitted for v in joined]),
        # from the first `join` emitted to the first ok, failed attempts and back-off included
        **stats("join_with_retries", [v.joins[0].answered - v.first_join_emitted for v in joined]),
        **stats("open_to_joined", [v.joins[0].answered - v.arrived_at for v in joined]),
        **stats("page", [v.page_seconds for v in viewers if v.page_seconds is not None]),
        "failed_join_attempts": counters(viewers, "join_failures").total(),
        "failed_joins_by_code": dict(counters(viewers, "join_failures")),
        "connect_failures": dict(counters(viewers, "connect_failures")),
    }


def _drop_figures(viewers: list[PageViewer], start: float, end: float) -> dict:
    drops = [[r for t, r in v.drops if start <= t <= end] for v in viewers]
    return {
        "viewers_dropped": sum(1 for d in drops if d),
        "drops": sum(len(d) for d in drops),
        "drop_reasons": dict(Counter(r for d in drops for r in d)),
    }


def _pin_reach(viewers: list[PageViewer], tap: PinTap) -> dict:
    """How long `pinned` took to reach every viewer joined when the host's tap left (a pin the
    server refused reaches nobody: all of them count as missed)."""
    eligible = [v for v in viewers if v.joins and v.joins[0].answered < tap.sent]
    delays = [v.pins[tap.pin_id] - tap.sent for v in eligible if tap.pin_id in v.pins]
    late = [d for d in delays if d > PIN_MISS_SECONDS]
    return {
        "pin_id": tap.pin_id,
        "status": tap.status,
        "viewers": len(eligible),
        **stats("reach", delays),
        "within_2s": sum(1 for d in delays if d <= PIN_TARGET_SECONDS),
        "missed_5s": len(eligible) - len(delays) + len(late),
    }


def _worst_pin(pins: list[dict]) -> float | None:
    """The slowest pin's time to reach every eligible viewer; None when any pin missed one."""
    if any(p["missed_5s"] or not p["pin_id"] for p in pins):
        return None
    return max((p["reach_max_ms"] or 0.0) for p in pins)


def _question_figures(viewers: list[PageViewer], posted: dict) -> dict:
    """Joined viewers should have every question: live, or from the history loaded on connect."""
    ids = set(posted["ids"])
    joined = [v for v in viewers if v.joins]
    missing = [len(ids - set(v.messages)) for v in joined]
    return {
        "questions_posted": len(ids),
        "question_statuses": posted["statuses"],
        "viewers_with_every_question": sum(1 for m in missing if m == 0),
        "question_misses": sum(missing),
    }


async def count_converges(
    scene: Scene,
    viewers: list[PageViewer],
    *,
    since: float,
    wait: float,
    target: int | None = None,
) -> dict:
    """Seconds from `since` until every process's GET /live-sessions/<id> `viewers`, and then
    the count every joined viewer shows (join ack, `viewers` events), equal the number of
    viewers joined (and `target`, when given). Polled every 0.5 s for `wait` seconds."""
    deadline = time.monotonic() + wait
    url = f"/api/v1/live-sessions/{scene.data.session_id}"
    processes_right = viewers_right = None
    shown: list[int | None] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for _ in range(10_000):
            before = sum(1 for v in viewers if v.joined)
            shown = list(await asyncio.gather(*(_shown(http, u + url) for u in scene.urls)))
            truth = sum(1 for v in viewers if v.joined)  # the GETs may have waited a while
            settled = truth == before and (target is None or truth == target)
            now = time.monotonic() - since
            if processes_right is None and settled and all(n == truth for n in shown):
                processes_right = now
            if viewers_right is None and settled and _all_show(viewers, truth):
                viewers_right = now
            done = processes_right is not None and viewers_right is not None
            if done or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
    truth = sum(1 for v in viewers if v.joined)
    return {
        "joined_now": truth,
        "shown_by_each_process": shown,
        "processes_right_s": round(processes_right, 1) if processes_right is not None else None,
        "viewers_right_s": round(viewers_right, 1) if viewers_right is not None else None,
        "viewers_showing_it": sum(1 for v in viewers if v.joined and v.shown_count == truth),
    }


def _all_show(viewers: list[PageViewer], count: int) -> bool:
    return all(v.shown_count == count for v in viewers if v.joined)


async def _shown(http: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with http.get(url) as response:
            body = await response.json(content_type=None)
            return body.get("viewers") if response.status == 200 else None
    except (TimeoutError, ValueError, aiohttp.ClientError):
        return None


def ping_lateness(viewers: list[PageViewer], interval: float = PING_INTERVAL) -> dict:
    """How late the servers' Engine.IO PINGs came (gap on one connection minus the interval):
    a process that falls ping_timeout (20 s) behind drops its sockets as 'ping timeout'."""
    late = [gap - interval for v in viewers for gap in v.ping_gaps()]
    return {
        "ping_gaps": len(late),
        "ping_late_p50_ms": ms(percentile(late, 50)),
        "ping_late_p99_ms": ms(percentile(late, 99)),
        "ping_late_max_ms": ms(max(late) if late else None),
    }
