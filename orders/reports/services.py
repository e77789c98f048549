"""Sales figures aggregated in SQL from what the order service wrote.

Every figure follows API.md: an order counts once paid (`paid_at` set), on the local day it was
paid and in the session it was bought from; refunds count on the local day they were made.

Local days use the fixed UTC offset of `TIMEZONE` (Asia/Shanghai is UTC+8 all year), applied in
SQL by offset arithmetic, so SQLite and PostgreSQL bucket every timestamp into the same day. A
zone with daylight saving time gets its offset at report time (logged): its days may be an hour
off near a change; we chose that over per-dialect zone rules that would disagree.

This module never imports `live`: the host's own sessions and session titles come from the
`live_session` table through a lightweight table construct.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Integer,
    Select,
    case,
    cast,
    column,
    distinct,
    func,
    literal_column,
    null,
    select,
    table,
    text,
    union_all,
)

from orders.models import Order, OrderItem
from shop.errors import Forbidden
from shop.extensions import db
from shop.models import Cooperative, Product, Role, User, utcnow

log = logging.getLogger(__name__)

GROUPS = ("day", "product", "cooperative", "session")
FIGURES = ("orders", "units", "gross", "refunds", "net", "buyers")

#: The live package's session table, seen from here without importing `live`.
live_session = table("live_session", column("id"), column("host_id"), column("title"))

order_table = Order.__table__
item_table = OrderItem.__table__


@dataclass(frozen=True)
class Scope:
    """What a user may see: everything, a host's own sessions, or one cooperative's items."""

    host_id: int | None = None
    cooperative_id: int | None = None
    session_id: int | None = None


def scope_for(user: User) -> Scope:
    """Admins see all; hosts the orders of their own sessions; coops their own items."""
    if user.role == Role.ADMIN:
        return Scope()
    if user.role == Role.HOST:
        return Scope(host_id=user.id)
    if user.role == Role.COOP and user.cooperative_id is not None:
        return Scope(cooperative_id=user.cooperative_id)
    raise Forbidden("Reports are for admins, hosts and cooperatives.")


def utc_offset(now: datetime | None = None) -> timedelta:
    """The report zone's UTC offset, fixed for the whole report (see the module docstring)."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    now = now or utcnow()
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    year = now.year
    if (
        datetime(year, 1, 1, tzinfo=zone).utcoffset()
        != datetime(year, 7, 1, tzinfo=zone).utcoffset()
    ):
        log.warning("TIMEZONE %s has DST; reports use today's offset %s", zone, offset)
    return offset


def local_bounds(
    start: date | None, end: date | None, offset: timedelta
) -> tuple[datetime | None, datetime | None]:
    """Local dates (inclusive) to a half-open UTC range [lower, upper)."""
    lower = datetime.combine(start, time(), UTC) - offset if start else None
    upper = datetime.combine(end + timedelta(days=1), time(), UTC) - offset if end else None
    return lower, upper


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def shifted_bucket(col: ColumnElement, offset: timedelta, unit: str) -> ColumnElement:
    """`col` (UTC) moved by `offset` and cut to its day or minute; `bucket_key` makes it a string.

    SQLite gets the string directly; PostgreSQL gets a date or timestamp, which group and sort
    much faster than text under a locale's collation.
    """
    # Rendered inline (constants and an int, never user input) so that an expression grouped
    # by is textually equal to the one selected, as PostgreSQL requires.
    minutes = int(offset.total_seconds() // 60)
    if _dialect() == "sqlite":
        fmt = "%Y-%m-%d" if unit == "day" else "%Y-%m-%dT%H:%M:00Z"
        return func.strftime(
            literal_column(f"'{fmt}'"), col, literal_column(f"'{minutes:+d} minutes'")
        )
    shifted = func.timezone(literal_column("'UTC'"), col) + literal_column(
        f"interval '{minutes} minutes'"
    )
    if unit == "day":
        return cast(shifted, Date)
    return func.date_trunc(literal_column("'minute'"), shifted)


def bucket_key(value: object) -> object:
    """A day as YYYY-MM-DD, a minute as 2026-11-10T15:59:00Z, whichever database made it."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:00Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _scoped(stmt: Select, scope: Scope) -> Select:
    if scope.cooperative_id is not None:
        stmt = stmt.where(item_table.c.cooperative_id == scope.cooperative_id)
    if scope.host_id is not None:
        own = select(live_session.c.id).where(live_session.c.host_id == scope.host_id)
        stmt = stmt.where(order_table.c.live_session_id.in_(own))
    if scope.session_id is not None:
        stmt = stmt.where(order_table.c.live_session_id == scope.session_id)
    return stmt


def _in_range(col: ColumnElement, lower: datetime | None, upper: datetime | None) -> list:
    conditions = [col.is_not(None)]
    if lower is not None:
        conditions.append(col >= lower)
    if upper is not None:
        conditions.append(col < upper)
    return conditions


def _key(group_by: str | None, at: ColumnElement, offset: timedelta) -> ColumnElement:
    if group_by == "day":
        return shifted_bucket(at, offset, "day")
    if group_by == "product":
        return item_table.c.product_id
    if group_by == "cooperative":
        return item_table.c.cooperative_id
    if group_by == "session":
        return order_table.c.live_session_id
    return literal_column("0")


def line_total() -> ColumnElement:
    """A line's amount as a plain integer: it is part of `order.total`, itself an integer.

    Kept 32-bit on purpose: PostgreSQL sums integers with a cheap 64-bit state but bigints
    with a 128-bit one allocated per group, which made the reports several times slower.
    """
    return item_table.c.unit_price * item_table.c.quantity


def _refund_share() -> ColumnElement:
    """An item's part of its order's refund: the whole line, or its share of a partial refund."""
    line = line_total()
    return case(
        (order_table.c.refunded_amount >= order_table.c.total, line),
        else_=cast(
            cast(line, BigInteger) * order_table.c.refunded_amount / order_table.c.total, Integer
        ),
    )


def facts(
    scope: Scope,
    group_by: str | None,
    lower: datetime | None,
    upper: datetime | None,
    offset: timedelta,
):
    """One row per sold item line (paid in range) and per refunded line (refunded in range)."""
    base = item_table.join(order_table, order_table.c.id == item_table.c.order_id)
    zero = literal_column("0")
    sales = select(
        _key(group_by, order_table.c.paid_at, offset).label("k"),
        order_table.c.id.label("order_id"),
        order_table.c.buyer_id.label("buyer_id"),
        item_table.c.quantity.label("units"),
        line_total().label("gross"),
        cast(zero, Integer).label("refunds"),
    ).select_from(base)
    sales = _scoped(sales.where(*_in_range(order_table.c.paid_at, lower, upper)), scope)
    refunds = select(
        _key(group_by, order_table.c.refunded_at, offset).label("k"),
        cast(null(), Integer).label("order_id"),
        cast(null(), Integer).label("buyer_id"),
        cast(zero, Integer).label("units"),
        cast(zero, Integer).label("gross"),
        _refund_share().label("refunds"),
    ).select_from(base)
    refunds = refunds.where(
        *_in_range(order_table.c.refunded_at, lower, upper), order_table.c.refunded_amount > 0
    )
    return union_all(sales, _scoped(refunds, scope)).cte("facts")


def _rolled(f):
    """Figures per key in one GROUP BY, the same statement on both databases.

    Cheap on PostgreSQL because the key is a date or an integer (not text sorted under a
    locale's collation) and amounts are 32-bit (see `line_total`); a three-step hash
    aggregation without DISTINCT was measured and was slower on both databases.
    """
    return (
        select(
            f.c.k,
            func.count(distinct(f.c.order_id)).label("orders"),
            func.coalesce(func.sum(f.c.units), 0).label("units"),
            func.coalesce(func.sum(f.c.gross), 0).label("gross"),
            func.coalesce(func.sum(f.c.refunds), 0).label("refunds"),
            func.count(distinct(f.c.buyer_id)).label("buyers"),
        )
        .group_by(f.c.k)
        .subquery("figures")
    )


def _labelled(f, group_by: str):
    """The grouped figures with each key's human label joined in SQL."""
    g = _rolled(f)
    figures = [g.c.orders, g.c.units, g.c.gross, g.c.refunds, g.c.buyers]
    if group_by == "product":
        label, target = Product.__table__.c.name, Product.__table__
    elif group_by == "cooperative":
        label, target = Cooperative.__table__.c.name, Cooperative.__table__
    elif group_by == "session":
        label, target = live_session.c.title, live_session
    else:
        return select(g.c.k, g.c.k.label("label"), *figures)
    joined = g.outerjoin(target, target.c.id == g.c.k)
    return select(g.c.k, label.label("label"), *figures).select_from(joined)


def _as_figures(row) -> dict:
    gross, refunds = int(row.gross), int(row.refunds)
    return {
        "orders": int(row.orders),
        "units": int(row.units),
        "gross": gross,
        "refunds": refunds,
        "net": gross - refunds,
        "buyers": int(row.buyers),
    }


def sales_report(
    user: User,
    *,
    group_by: str = "day",
    start: date | None = None,
    end: date | None = None,
) -> dict:
    """`{rows, totals}` for what `user` may see, grouped by day, product, cooperative or session."""
    return grouped_sales(scope_for(user), group_by=group_by, start=start, end=end)


def grouped_sales(
    scope: Scope, *, group_by: str = "day", start: date | None = None, end: date | None = None
) -> dict:
    """Rows and totals from one statement (one snapshot): grouped facts, then distinct counts.

    Units, gross and refunds add up across rows (each fact has exactly one key), so their
    totals are the rows' sums; distinct orders and buyers do not (an order spans products),
    so they come from the paid orders themselves, without the items.
    """
    offset = utc_offset()
    lower, upper = local_bounds(start, end, offset)
    f = facts(scope, group_by, lower, upper, offset)
    grouped = _labelled(f, group_by).add_columns(literal_column("0").label("is_total"))
    _roomy_work_mem()
    paid = _paid_per_buyer(scope, lower, upper)
    zero = literal_column("0")
    total = select(
        null().label("k"),
        null().label("label"),
        func.coalesce(func.sum(paid.c.n), 0).label("orders"),
        zero.label("units"),
        zero.label("gross"),
        zero.label("refunds"),
        func.count().label("buyers"),
        literal_column("1").label("is_total"),
    ).select_from(paid)
    rows, totals = [], dict.fromkeys(FIGURES, 0)
    for row in db.session.execute(union_all(grouped, total)):
        if row.is_total == 1:
            totals.update(orders=int(row.orders or 0), buyers=int(row.buyers or 0))
            continue
        figures = _as_figures(row)
        rows.append(
            {"key": bucket_key(row.k), "label": _label(group_by, row.k, row.label), **figures}
        )
        for name in ("units", "gross", "refunds", "net"):
            totals[name] += figures[name]
    _sort(rows, group_by)
    return {"rows": rows, "totals": totals}


def _paid_per_buyer(scope: Scope, lower: datetime | None, upper: datetime | None):
    """Orders paid in range in the scope, counted per buyer: distinct orders and buyers."""
    paid = select(order_table.c.buyer_id, func.count().label("n")).where(
        *_in_range(order_table.c.paid_at, lower, upper)
    )
    if scope.cooperative_id is not None:
        own_items = select(item_table.c.order_id).where(
            item_table.c.cooperative_id == scope.cooperative_id
        )
        paid = paid.where(order_table.c.id.in_(own_items))
    paid = _scoped(paid, Scope(host_id=scope.host_id, session_id=scope.session_id))
    return paid.group_by(order_table.c.buyer_id).subquery("paid_buyers")


def _roomy_work_mem() -> None:
    """Let PostgreSQL sort a report's ~150k fact rows in memory instead of spilling to disk.

    SET LOCAL lasts until this read transaction ends (the request's teardown), so the pool's
    connections keep the server's default for everything else.
    """
    if _dialect() == "postgresql":
        mem = current_app.config.get("REPORTS_WORK_MEM", "64MB")
        db.session.execute(text("SELECT set_config('work_mem', :mem, true)"), {"mem": mem})


def _label(group_by: str, key, label) -> str:
    if group_by == "session" and key is None:
        return "Not in a live session"
    if label is None:
        return f"#{key}"
    return str(label)


def _sort(rows: list[dict], group_by: str) -> None:
    """Days in order; everything else best seller first, cart orders (no session) last."""
    if group_by == "day":
        rows.sort(key=lambda r: r["key"])
    else:
        rows.sort(key=lambda r: (r["key"] is None, -r["gross"], r["key"] or 0))
