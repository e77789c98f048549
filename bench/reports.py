"""Time every sales report over 100,000 paid orders, on SQLite or PostgreSQL.

    python -m bench.reports --db sqlite|postgres --orders 100000 [--runs 5]

Loads the orders straight into the tables (COPY on PostgreSQL, executemany on SQLite; the
order service is not what is measured here), then times each report through its service
function (the SQL plus turning rows into the answer), median of `--runs` after one warm-up.
A bare `SELECT count(*)` over the same paid orders, timed in the same run, is the baseline
every figure is also quoted against. Prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/farmlive_reports_bench"
END = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # local midnight starting 11-27 in Shanghai
DAYS = 90
COOPERATIVES, PRODUCTS, HOSTS, SESSIONS, BUYERS = 20, 200, 20, 300, 20_000
REFUNDED_SHARE, LIVE_SHARE = 0.05, 0.6


def _machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 1024 / 1024, 1)}


def _rows(n_orders: int, seed: int = 6) -> dict[str, list[dict]]:
    """The synthetic world: cooperatives, products, users, sessions, orders and their items."""
    rnd = random.Random(seed)
    t0 = END - timedelta(days=DAYS)
    now = END
    coops = [
        {"id": i, "name": f"合作社 {i}", "region": "新疆", "description": "", "created_at": t0}
        for i in range(1, COOPERATIVES + 1)
    ]
    products = [
        {
            "id": i,
            "cooperative_id": (i - 1) % COOPERATIVES + 1,
            "name": f"产品 {i}",
            "description": "",
            "active": True,
            "created_at": t0,
        }
        for i in range(1, PRODUCTS + 1)
    ]
    variants = [
        {
            "id": i,
            "product_id": i,
            "name": "1 kg",
            "price": rnd.randrange(500, 20000, 100),
            "stock": 1_000_000,
            "low_stock_threshold": 5,
            "updated_at": t0,
        }
        for i in range(1, PRODUCTS + 1)
    ]
    users = [
        {
            "id": 1,
            "email": "admin@bench",
            "password_hash": "x",
            "name": "admin",
            "role": "admin",
            "cooperative_id": None,
            "active": True,
            "created_at": t0,
        }
    ]
    users += [
        {
            "id": 1 + i,
            "email": f"host{i}@bench",
            "password_hash": "x",
            "name": f"host{i}",
            "role": "host",
            "cooperative_id": None,
            "active": True,
            "created_at": t0,
        }
        for i in range(1, HOSTS + 1)
    ]
    users += [
        {
            "id": 100 + i,
            "email": f"coop{i}@bench",
            "password_hash": "x",
            "name": f"coop{i}",
            "role": "coop",
            "cooperative_id": i,
            "active": True,
            "created_at": t0,
        }
        for i in range(1, COOPERATIVES + 1)
    ]
    first_buyer = 1000
    users += [
        {
            "id": first_buyer + i,
            "email": f"b{i}@bench",
            "password_hash": "x",
            "name": f"b{i}",
            "role": "buyer",
            "cooperative_id": None,
            "active": True,
            "created_at": t0,
        }
        for i in range(BUYERS)
    ]
    sessions = []
    for i in range(1, SESSIONS + 1):
        start = t0 + timedelta(minutes=rnd.randrange(DAYS * 24 * 60 - 240))
        sessions.append(
            {
                "id": i,
                "host_id": 1 + (i - 1) % HOSTS,
                "title": f"直播 {i}",
                "description": "",
                "status": "ended",
                "started_at": start,
                "ended_at": start + timedelta(hours=3),
                "peak_viewers": 0,
                "created_at": start,
            }
        )
    # One session gets a flash crowd (a tenth of all orders), the one the session report times.
    big = sessions[0]
    orders, items = [], []
    item_id = 0
    for oid in range(1, n_orders + 1):
        live = rnd.random() < LIVE_SHARE
        session = (
            (big if rnd.random() < 0.1 / LIVE_SHARE else rnd.choice(sessions)) if live else None
        )
        if session:
            paid = session["started_at"] + timedelta(seconds=rnd.randrange(3 * 3600))
        else:
            paid = t0 + timedelta(seconds=rnd.randrange(DAYS * 86400))
        lines = rnd.sample(range(1, PRODUCTS + 1), 1 if session else rnd.randint(1, 3))
        total = 0
        for pid in lines:
            item_id += 1
            qty = rnd.randint(1, 4)
            price = variants[pid - 1]["price"]
            total += qty * price
            items.append(
                {
                    "id": item_id,
                    "order_id": oid,
                    "variant_id": pid,
                    "product_id": pid,
                    "cooperative_id": products[pid - 1]["cooperative_id"],
                    "name": f"产品 {pid} · 1 kg",
                    "unit_price": price,
                    "quantity": qty,
                }
            )
        refunded = rnd.random() < REFUNDED_SHARE
        refunded_at = min(paid + timedelta(hours=rnd.randint(1, 96)), now) if refunded else None
        orders.append(
            {
                "id": oid,
                "number": f"B{oid:09d}",
                "buyer_id": first_buyer + rnd.randrange(BUYERS),
                "status": "refunded" if refunded else rnd.choice(["paid", "shipped", "delivered"]),
                "total": total,
                "currency": "CNY",
                "address": {"name": "x"},
                "live_session_id": session["id"] if session else None,
                "pin_id": None,
                "refunded_amount": total if refunded else 0,
                "created_at": paid - timedelta(minutes=1),
                "expires_at": paid + timedelta(minutes=14),
                "paid_at": paid,
                "refunded_at": refunded_at,
                "holds_stock": False,
            }
        )
    visits = [
        {"session_id": big["id"], "viewer_key": f"v{i}", "first_seen": big["started_at"]}
        for i in range(20_000)
    ]
    samples = [
        {
            "session_id": big["id"],
            "minute": big["started_at"] + timedelta(minutes=m),
            "viewers": 1000 + rnd.randrange(500),
        }
        for m in range(180)
    ]
    return {
        "cooperative": coops,
        "product": products,
        "variant": variants,
        "user": users,
        "live_session": sessions,
        "order": orders,
        "order_item": items,
        "viewer_visit": visits,
        "viewer_sample": samples,
    }


def _load(app, data: dict[str, list[dict]]) -> float:
    """Insert the world as fast as the driver allows; returns seconds taken."""
    from shop.extensions import db

    started = time.perf_counter()
    with app.app_context():
        tables = db.metadata.tables
        if db.engine.dialect.name == "postgresql":
            _copy_pg(db, tables, data)
        else:
            with db.engine.begin() as conn:
                for name, rows in data.items():
                    for i in range(0, len(rows), 20_000):
                        conn.execute(insert(tables[name]), rows[i : i + 20_000])
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def _copy_pg(db, tables, data: dict[str, list[dict]]) -> None:
    """COPY each table from the rows, columns named by the first row (NULLs filled in)."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for name, rows in data.items():
            columns = sorted({key for row in rows for key in row})
            quoted = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f'COPY "{name}" ({quoted}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(
                        [json.dumps(row[c]) if c == "address" else row.get(c) for c in columns]
                    )
            if "id" in columns:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                    f'(SELECT max(id) FROM "{name}"))'
                )
        raw.commit()
    finally:
        raw.close()


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: plans cached, pages in memory
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _cases(app) -> dict[str, Callable[[], object]]:
    from live.reports.services import session_report
    from orders.reports.services import sales_report
    from shop.extensions import db
    from shop.models import User

    admin, host, coop = (db.session.get(User, i) for i in (1, 2, 101))
    last30 = {"start": date(2026, 10, 28), "end": date(2026, 11, 26)}
    cases: dict[str, Callable[[], object]] = {
        "baseline: SELECT count(*) paid orders": lambda: db.session.execute(
            text('SELECT count(*) FROM "order" WHERE paid_at IS NOT NULL')
        ).scalar(),
    }
    cases["floor: bare join, sum(quantity) of paid items"] = lambda: db.session.execute(
        text(
            'SELECT count(*), sum(i.quantity) FROM order_item i JOIN "order" o'
            " ON o.id = i.order_id WHERE o.paid_at IS NOT NULL"
        )
    ).one()
    for group_by in ("day", "product", "cooperative", "session"):
        cases[f"admin by {group_by}, all 90 days"] = lambda g=group_by: sales_report(
            admin, group_by=g
        )
    cases["admin by day, last 30 days"] = lambda: sales_report(admin, group_by="day", **last30)
    cases["admin by product, one day"] = lambda: sales_report(
        admin, group_by="product", start=date(2026, 11, 20), end=date(2026, 11, 20)
    )
    cases["host (own sessions) by day"] = lambda: sales_report(host, group_by="day")
    cases["coop (own items) by day"] = lambda: sales_report(coop, group_by="day")
    cases["coop (own items) by product"] = lambda: sales_report(coop, group_by="product")
    cases["session report (the 10%-of-orders session)"] = lambda: session_report(admin, 1)
    return cases


def _explain(app, group_by: str = "product") -> str:
    """EXPLAIN ANALYZE of the real statement of an all-time admin report, for BENCHMARKS.md."""
    from sqlalchemy import event

    from orders.reports.services import sales_report
    from shop.extensions import db
    from shop.models import User

    if db.engine.dialect.name != "postgresql":
        return ""
    captured: list = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        sales_report(db.session.get(User, 1), group_by=group_by)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    rows = db.session.connection().exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters)
    return "\n".join(row[0] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", PG_DEFAULT))
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/...)")
    args = parser.parse_args(argv)

    from shop import create_app
    from shop.extensions import db

    tmp = tempfile.TemporaryDirectory()
    url = args.url if args.db == "postgres" else f"sqlite:///{tmp.name}/reports.sqlite3"
    app = create_app("config.TestConfig", SQLALCHEMY_DATABASE_URI=url, TIMEZONE="Asia/Shanghai")
    with app.app_context():
        db.drop_all()
        db.create_all()
    data = _rows(args.orders)
    load_s = _load(app, data)
    results = {}
    load_before = os.getloadavg()
    with app.test_request_context():
        for name, fn in _cases(app).items():
            results[name] = round(_median_ms(fn, args.runs), 2)
            db.session.rollback()
        plan = _explain(app)
    baseline = next(iter(results.values()))
    report = {
        "db": args.db,
        "orders": args.orders,
        "items": len(data["order_item"]),
        "runs": args.runs,
        "load_seconds": round(load_s, 1),
        "machine": _machine(),
        "loadavg_1_5_15_before_after": [list(load_before), list(os.getloadavg())],
        "median_ms": results,
        "ratio_to_baseline": {k: round(v / baseline, 1) for k, v in results.items()},
        "explain_admin_by_product": plan,
    }
    print(
        f"\n{args.db}: {args.orders:,} paid orders, {len(data['order_item']):,} items, "
        f"loaded in {load_s:.1f} s; median of {args.runs} runs"
    )
    print(f"{'report':45} {'ms':>9} {'x baseline':>11}")
    for name, ms in results.items():
        print(f"{name:45} {ms:9.1f} {ms / baseline:11.1f}")
    out = Path(args.out or ROOT / "bench" / "results" / f"reports-{args.db}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {out}")
    with app.app_context():
        db.engine.dispose()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
