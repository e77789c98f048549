"""The reconnect storm of `python -m bench.flash_sale --storm kill|drop` (issue 14), run after
the arrival phase (bench.arrival) with its viewers joined.

Every server's worker is killed with SIGKILL (gunicorn's master starts a new one, as after a
crash) or every viewer's WebSocket is closed at once (a network drop); the viewers reconnect
with python-socketio's back-off and join again by themselves, and the host pins again
STORM_PIN_AFTER seconds after the cut. A viewer is re-synced once it is joined again and knows
that pin. Everything stops `--storm-seconds` after the cut.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from bench.arrival import PinTap, Scene, count_converges, counters, pin, sleep_until, stats
from bench.page_viewer import PageViewer

STORM_PIN_AFTER = 2.0
RESYNC_TARGET_SECONDS = 15.0


async def storm(scene: Scene, viewers: list[PageViewer], kind: str) -> dict:
    """Cut every joined viewer off at once; time until each is joined again with the current
    pin. Viewers that never joined in the arrival have given up and are left out."""
    limit = scene.args.storm_seconds
    viewers = [v for v in viewers if v.joined]
    before = len(viewers)
    failed_before = counters(viewers, "join_failures")
    connect_before = counters(viewers, "connect_failures")
    scene.meters.mark()
    cut = time.monotonic()
    for viewer in viewers:
        viewer.give_up_at = cut + limit
    if kind == "kill":
        for server in scene.servers:
            if (pid := server.worker_pid()) is not None:
                os.kill(pid, signal.SIGKILL)  # gunicorn's master starts a new worker
    else:
        await asyncio.gather(*(v.cut_connection() for v in viewers))
    back = asyncio.create_task(_servers_back(scene, cut, limit))
    storm_pin = asyncio.create_task(_pin_until_done(scene, cut + STORM_PIN_AFTER, cut + limit))
    counting = asyncio.create_task(
        count_converges(scene, viewers, since=cut, target=before, wait=limit + 5.0)
    )
    storm_tap = await storm_pin
    pin_id = storm_tap.pin_id
    for _ in range(10_000):
        done = all(_resynced(v, cut, pin_id) is not None for v in viewers)
        if done or time.monotonic() >= cut + limit:
            break
        await asyncio.sleep(0.1)
    times = [t for v in viewers if (t := _resynced(v, cut, pin_id)) is not None]
    rejoined = [t - cut for v in viewers if (t := _joined_again(v, cut)) is not None]
    counted = await counting
    out = {
        "kind": kind,
        "viewers_before": before,
        "viewers_cut": sum(1 for v in viewers if any(t >= cut for t, _ in v.drops)),
        "dropped_again": sum(1 for v in viewers if sum(t >= cut for t, _ in v.drops) > 1),
        "pin_sent_after_s": round(storm_tap.sent - cut, 1) if pin_id else None,
        "servers_back_after_s": await back,
        **stats("rejoin", rejoined),
        **stats("resync", times),
        "rejoined": len(rejoined),
        "resynced": len(times),
        "not_resynced_15s": len(viewers) - sum(1 for t in times if t <= RESYNC_TARGET_SECONDS),
        "not_resynced_at_end": len(viewers) - len(times),
        "failed_join_attempts": (counters(viewers, "join_failures") - failed_before).total(),
        "failed_joins_by_code": dict(counters(viewers, "join_failures") - failed_before),
        "connect_failures": dict(counters(viewers, "connect_failures") - connect_before),
        "viewer_count": counted,
        **await scene.meters.read(),
    }
    return {"storm": out}


def _joined_again(viewer: PageViewer, cut: float) -> float | None:
    """When it was joined again after the cut (the cut itself if it was never cut off)."""
    if not viewer.joined:
        return None
    if not any(t >= cut for t, _ in viewer.drops):
        return cut
    return viewer.joined_since(cut)


def _resynced(viewer: PageViewer, cut: float, pin_id: int) -> float | None:
    """Seconds from the cut until it was joined again and knew the storm's pin (None: not yet)."""
    joined = _joined_again(viewer, cut)
    if joined is None or not pin_id or pin_id not in viewer.pins:
        return None
    return max(joined, viewer.pins[pin_id]) - cut


async def _pin_until_done(scene: Scene, moment: float, deadline: float) -> PinTap:
    """The host pins again during the storm, retrying while its process is down."""
    await sleep_until(moment)
    for _ in range(1_000):
        tap = await pin(scene.host, scene.data.session_id, scene.data.flash_product_id)
        if tap.pin_id or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.5)
    return tap


async def _servers_back(scene: Scene, cut: float, limit: float) -> dict:
    """Seconds until each process answers /healthz at all (its new worker is serving) and
    until it answers 200 (its database check got a pooled connection within 2 s)."""

    async def one(server) -> tuple[float | None, float | None]:
        answering = None
        while time.monotonic() < cut + limit:
            status, _ = await asyncio.to_thread(server.health, 3.0)
            if status and answering is None:
                answering = round(time.monotonic() - cut, 1)
            if status == 200:
                return answering, round(time.monotonic() - cut, 1)
            await asyncio.sleep(0.2)
        return answering, None

    found = await asyncio.gather(*(one(s) for s in scene.servers))
    return {"answering_s": [a for a, _ in found], "healthy_s": [h for _, h in found]}
