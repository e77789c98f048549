"""The flash-sale benchmark: one command that starts the servers itself and measures them.

    python -m bench.flash_sale [--viewers N --buyers M --stock S --db sqlite|postgres
                                --processes P --json FILE]

(1) the database's own limit for the checkout transaction (raw psycopg/sqlite3, 8 connections);
(2) N Socket.IO viewers join a live session, the host pins, `pinned` arrival is timed per viewer;
(3) M buyers tap instant checkout within two seconds on S units, then pay;
(4) sustained checkout at 32 and 256 concurrent buyers on plentiful stock;
(5) the same sustained load at 32 on bench.minimal_app, bare Flask running (1)'s transaction.
With `--arrival N` (bench.arrival), (2) and (3) become one phase: N page viewers arrive over
`--arrival-seconds` while the crowd taps, questions are asked and the host pins; `--storm`
(bench.storm) then cuts every viewer off at once and times their re-sync.
Only 127.0.0.1 traffic; every phase has a count and a time limit. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import arrival, page_viewer, storm, summary
from bench.clients import (
    Browser,
    connect_viewers,
    disconnect_viewers,
    flash_crowd,
    login_all,
    ms,
    percentile,
    sustained,
    sustained_minimal,
)
from bench.meters import Meters
from bench.payments import WEBHOOK_SECRET, pay_all, stripe_stub
from bench.rawdb import raw_db_tps
from bench.servers import (
    ROOT,
    GunicornServer,
    base_env,
    create_schema,
    reset_postgres_database,
    start_servers,
    stop_all,
)
from bench.setup_data import BenchData, seed

MINIMAL_CONCURRENCY = 32


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.flash_sale", description=__doc__)
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--buyers", type=int, default=60)
    parser.add_argument("--stock", type=int, default=20)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--json", dest="json_path", default=None, help="write the results here")
    parser.add_argument("--payments", choices=["demo", "stripe"], default="demo")
    parser.add_argument("--intents-per-second", type=float, default=25.0)
    parser.add_argument("--redis", action="store_true", help="use Redis even with one process")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg-database", default="farmlive_bench")
    parser.add_argument("--raw-seconds", type=float, default=5.0)
    parser.add_argument("--sustain-seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="32,256", help="sustained load levels")
    parser.add_argument("--ports", default="", help="fixed server ports, e.g. 8001,8002 (nginx)")
    parser.add_argument("--via", default="", help="send all client traffic through this URL")
    parser.add_argument("--source-groups", type=int, default=0, help="loopback source addrs")
    parser.add_argument("--polling-first", action="store_true", help="viewers start on polling")
    parser.add_argument("--pool-size", type=int, default=None, help="DB_POOL_SIZE per process")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-minimal", action="store_true", help="skip the minimal-app phase")
    parser.add_argument("--arrival", type=int, default=0, help="page viewers arriving in the sale")
    parser.add_argument("--arrival-seconds", type=float, default=10.0)
    parser.add_argument("--questions", type=int, default=20, help="questions asked meanwhile")
    parser.add_argument(
        "--storm", nargs="?", const="kill", choices=["kill", "drop"], help="then a reconnect storm"
    )
    parser.add_argument("--storm-seconds", type=float, default=30.0, help="storm deadline")
    args = parser.parse_args(argv)
    if args.processes < 1 or args.viewers < 0 or args.buyers < 1 or args.stock < 0:
        parser.error("processes and buyers must be >= 1; viewers and stock >= 0")
    if args.arrival < 0 or args.arrival_seconds <= 0 or (args.storm and not args.arrival):
        parser.error("--arrival must be >= 0 with --arrival-seconds > 0; --storm needs it")
    return args


def _collect_garbage_rarely() -> None:
    """This client holds up to 1,200 viewers' sockets, tasks and buffers. With CPython's
    default thresholds (a collection every 700 new objects, and full ones that walk them all)
    the collector took about a third of the client's CPU at 1,200 viewers (py-spy: 5.6 s of
    16.5 s), so the client read the servers' news seconds late and the figures measured it,
    not the servers. A benchmark run is short: freeze what exists and collect rarely."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 1_000)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated benchmark still stops the servers it started (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="farmlive-bench-"))
    results: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results.update(summary.machine())
    results.update(db=args.db, processes=args.processes, payments=args.payments)
    print(f"work directory {workdir}", flush=True)
    database_url = _database(args, workdir)
    create_schema(database_url)
    data = seed(database_url, buyers=args.buyers, stock=args.stock)
    print("(1) raw database limit ...", flush=True)
    results.update(raw_db_tps(database_url, args.raw_seconds))

    stub = stripe_stub() if args.payments == "stripe" else None
    servers = _start(args, database_url, workdir, stub)
    for server in servers:
        print(f"server {server.url} worker pid {server.worker_pid()}", flush=True)
    try:
        urls = [args.via] if args.via else [s.url for s in servers]
        pg_url = database_url if args.db == "postgres" else None
        _collect_garbage_rarely()
        page_viewer.wait_for_frames_cheaply()
        results.update(asyncio.run(run_phases(args, data, urls, servers, stub, pg_url)))
    finally:
        stop_all(servers)
        if stub is not None:
            stub.stop()
    if not args.no_minimal:
        results.update(_minimal(args, database_url, workdir))
    results.update(_consistency(database_url, data, args.stock))
    results["db_locked_errors"] = sum(
        s.log_tail(10**8).count("database is locked") for s in servers
    )
    summary.derive(results)
    print(summary.table(results))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2, ensure_ascii=False))
        print(f"wrote {args.json_path}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _database(args: argparse.Namespace, workdir: Path) -> str:
    if args.db == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    return reset_postgres_database(args.pg_database)


def _start(args, database_url: str, workdir: Path, stub) -> list[GunicornServer]:
    env = base_env(
        DATABASE_URL=database_url,
        SECRET_KEY="bench-" + uuid.uuid4().hex,
        RATELIMIT_ENABLED="0",
        RUN_BACKGROUND_TASKS="1",
        SOCKETIO_CHANNEL=f"farmlive-bench-{uuid.uuid4().hex[:8]}",
        PAYMENT_PROVIDER=args.payments,
        STRIPE_INTENTS_PER_SECOND=str(args.intents_per_second),
        # The sustained phase has each buyer tap back to back without paying; the unpaid-order
        # cap would turn it into a benchmark of the 409 (the cap's own count is still paid).
        MAX_UNPAID_ORDERS="1000000",
    )
    if args.processes > 1 or args.redis:
        env["REDIS_URL"] = args.redis_url
    if args.pool_size is not None:
        env["DB_POOL_SIZE"] = str(args.pool_size)
    if stub is not None:
        env.update(
            STRIPE_SECRET_KEY="sk_test_bench",
            STRIPE_PUBLISHABLE_KEY="pk_test_bench",
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=stub.url,
        )
    print(f"starting {args.processes} server process(es) ...", flush=True)
    if not args.ports:
        return start_servers(args.processes, env, workdir)
    ports = [int(p) for p in args.ports.split(",")]
    servers = []
    try:
        for i, port in enumerate(ports):
            servers.append(GunicornServer(env, workdir / f"server-{i}.log", port).start())
    except Exception:
        stop_all(servers)
        raise
    return servers


def _minimal(args: argparse.Namespace, database_url: str, workdir: Path) -> dict:
    """(5) The baseline, with our servers stopped: one gunicorn+gevent worker, rawdb's tables."""
    print(f"(5) minimal Flask app, {MINIMAL_CONCURRENCY} concurrent clients ...", flush=True)
    env = base_env(DATABASE_URL=database_url)
    if args.pool_size is not None:
        env["DB_POOL_SIZE"] = str(args.pool_size)
    server = GunicornServer(
        env,
        workdir / "minimal.log",
        target="bench.minimal_app:app",
        config=ROOT / "bench" / "minimal_gunicorn.py",
    ).start()
    try:
        result = asyncio.run(
            sustained_minimal(
                server.url, concurrency=MINIMAL_CONCURRENCY, seconds=args.sustain_seconds
            )
        )
    finally:
        server.stop()
    return {
        f"minimal_rps_{MINIMAL_CONCURRENCY}": result["rps"],
        f"minimal_{MINIMAL_CONCURRENCY}": result,
    }


async def run_phases(args, data: BenchData, urls: list[str], servers, stub, pg_url) -> dict:
    out: dict = {}
    groups = args.source_groups or None
    host = Browser(urls[0])
    await host.login(data.host_email, data.password)
    print(f"logging in {len(data.buyer_emails)} buyers ...", flush=True)
    buyers = await login_all(urls, data.buyer_emails, data.password, groups=groups)
    sampler = summary.RssSampler(servers)
    sampler.start()
    try:
        if args.arrival:
            scene = arrival.Scene(
                args=args,
                data=data,
                urls=urls,
                servers=servers,
                host=host,
                buyers=buyers,
                flash=lambda: _flash(buyers, data, args, stub),
                meters=Meters(servers, urls, data.session_id, pg_url),
            )
            out.update(await _arrival_and_storm(scene))
        else:
            out.update(await _viewers_and_crowd(args, data, urls, host, buyers, stub))
    finally:
        out.update(await sampler.stop())
    await _pin(host, data.session_id, data.bulk_product_id, None)
    for level in [int(c) for c in args.concurrency.split(",") if c.strip()]:
        print(f"(4) sustained checkout, {level} concurrent buyers ...", flush=True)
        result = await sustained(
            buyers,
            data.session_id,
            data.bulk_variant_id,
            concurrency=level,
            seconds=args.sustain_seconds,
        )
        out[f"checkout_rps_{level}"] = result["rps"]
        out[f"sustained_{level}"] = result
    for browser in [host, *buyers]:
        await browser.close()
    return out


async def _viewers_and_crowd(args, data: BenchData, urls, host, buyers, stub) -> dict:
    """(2) and (3): viewers connect, the host pins, then the flash crowd taps and pays."""
    print(f"(2) connecting {args.viewers} viewers ...", flush=True)
    viewers, sessions, failed = await connect_viewers(
        urls,
        args.viewers,
        data.session_id,
        groups=args.source_groups or None,
        websocket_only=not args.polling_first,
    )
    out: dict = {"viewers": args.viewers, "viewers_connected": len(viewers)}
    out["viewer_failures"] = failed
    await asyncio.sleep(1.0)
    out.update(await _fanout(host, data, viewers))
    print(f"(3) flash crowd: {len(buyers)} taps in 2 s on {args.stock} units ...", flush=True)
    out.update(await _flash(buyers, data, args, stub))
    out["events_received"] = sum(v.events for v in viewers)
    out["viewers_dropped"] = sum(v.dropped for v in viewers)
    await disconnect_viewers(viewers, sessions)
    return out


async def _arrival_and_storm(scene: arrival.Scene) -> dict:
    """(2)+(3) as one phase with page viewers arriving, then (with --storm) the storm."""
    args = scene.args
    await scene.meters.start()
    crowd = None
    try:
        print(
            f"(2+3) {args.arrival} viewers arrive in {args.arrival_seconds:g} s during the sale"
            f" ({len(scene.buyers)} taps on {args.stock} units, {args.questions} questions) ...",
            flush=True,
        )
        out, crowd = await arrival.arrival(scene, args.arrival, args.arrival_seconds)
        if args.storm:
            print(f"(2b) reconnect storm ({args.storm}) ...", flush=True)
            out.update(await storm.storm(scene, crowd.viewers, args.storm))
        out["engineio_pings"] = arrival.ping_lateness(crowd.viewers)
    finally:
        if crowd is not None:
            await crowd.close()
        await scene.meters.stop()
    return out


async def _pin(host: Browser, session_id: int, product_id: int, limit: int | None) -> float:
    """The host pins; returns the monotonic time the tap left (fan-out is timed from it)."""
    body = {"product_id": product_id}
    if limit is not None:
        body["per_buyer_limit"] = limit
    started = time.monotonic()
    status, answer, _ = await host.request("POST", f"/live-sessions/{session_id}/pins", body)
    if status != 201:
        raise RuntimeError(f"pin failed: {status} {answer}")
    return started


async def _fanout(host: Browser, data: BenchData, viewers) -> dict:
    started = await _pin(host, data.session_id, data.flash_product_id, 1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(_arrival(v, data.flash_product_id, started) for v in viewers):
            break
        await asyncio.sleep(0.05)
    delays = [
        arrival - started
        for v in viewers
        if (arrival := _arrival(v, data.flash_product_id, started)) is not None
    ]
    return {
        "delivered": len(delays),
        "fanout_p50_ms": ms(percentile(delays, 50)),
        "fanout_p99_ms": ms(percentile(delays, 99)),
        "fanout_max_ms": ms(max(delays) if delays else None),
    }


def _arrival(viewer, product_id: int, after: float) -> float | None:
    return next((t for t, pid in viewer.pinned_at if pid == product_id and t >= after), None)


async def _flash(buyers: list[Browser], data: BenchData, args, stub) -> dict:
    taps = await flash_crowd(buyers, data.session_id, data.flash_variant_id)
    statuses: dict[str, int] = {}
    for _, status, _, _ in taps:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    won = [(buyer, body["id"]) for buyer, status, body, _ in taps if status in (200, 201)]
    errors = [body.get("error") for _, status, body, _ in taps if status == 0]
    conflicts = [t for _, status, _, t in taps if status == 409]
    print(f"    paying {len(won)} orders ({args.payments}) ...", flush=True)
    paid = await pay_all(won, provider=args.payments, stub=stub)
    return {
        "taps": len(taps),
        "orders": len(won),
        "conflicts_409": len(conflicts),
        "tap_statuses": statuses,
        "tap_client_errors": errors[:5],
        "checkout_p50_ms": ms(percentile([t for *_, t in taps], 50)),
        "checkout_p99_ms": ms(percentile([t for *_, t in taps], 99)),
        "conflict_p99_ms": ms(percentile(conflicts, 99)),
        "intents_created": None,
        "intents_peak_per_s": None,
        **paid,
    }


def _consistency(database_url: str, data: BenchData, stock: int) -> dict:
    """Stock left plus units held or sold must equal the stock we started with."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT stock FROM variant WHERE id = :v"), {"v": data.flash_variant_id}
        ).scalar_one()
        units = conn.execute(
            text(
                'SELECT COALESCE(SUM(i.quantity), 0) FROM order_item i JOIN "order" o'
                " ON o.id = i.order_id WHERE i.variant_id = :v AND o.status <> 'cancelled'"
            ),
            {"v": data.flash_variant_id},
        ).scalar_one()
    engine.dispose()
    return {
        "stock": stock,
        "stock_left": left,
        "units_sold": int(units),
        "oversold": max(0, int(units) - stock) + max(0, -left),
        "stock_conserved": left + int(units) == stock,
    }


if __name__ == "__main__":
    sys.exit(main())
