"""Every pair of order transitions that can meet, raced over HTTP against a real server.

One `python wsgi.py` per pair on PostgreSQL; each round makes fresh orders, fires one thread
per request, released together by a barrier, then reads the database and checks what must
always hold (`invariant_breaks`): stock conserved, holds only on unpaid orders, one shipment
per cooperative once paid, at most one payment, cancel and refund per order, no 5xx.
RACE_ROUNDS (default 25) sets the rounds per pair.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from orders.models import Order, OrderEvent, OrderItem, Shipment, WebhookEvent
from shop.extensions import db
from shop.models import Variant, utcnow
from tests.orders.conftest import ADDRESS, WEBHOOK_SECRET, stripe_settings
from tests.orders.stripe_stub import event, signed

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow]

ROUNDS = int(os.environ.get("RACE_ROUNDS", "25"))
SERVER_ENV = {"RUN_BACKGROUND_TASKS": "0", "PAYMENT_PROVIDER": "demo", "MAX_UNPAID_ORDERS": "1000"}
TIMEOUT = 30
CANCEL_KINDS = {"cancelled_by_buyer", "cancelled_by_admin", "expired"}
REFUND_KINDS = {
    "refunded_by_buyer",
    "refunded_by_admin",
    "refund_succeeded",
    "late_payment_refunded",
    "stripe_refunded",
}
WAS_PAID = {"paid", "shipped", "delivered", "refunded"}
ACTIVE = {"pending_payment", "paid", "shipped", "delivered"}  # what counts against a pin's limit
OK, CONFLICT = "200", "409 invalid_transition"


# --- racing over HTTP ------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP answer, kept as what the checks need."""

    label: str
    status: int
    body: Any

    @property
    def outcome(self) -> str:
        """`200`, or `409 invalid_transition`: the status with the error code when it failed."""
        if self.status < 400:
            return str(self.status)
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return f"{self.status} {error.get('code') if isinstance(error, dict) else '?'}"

    def expect(self, status: int) -> Any:
        assert self.status == status, f"{self.label}: {self.status} {self.body}"
        return self.body


class Browser:
    """A user logged in to the server, with one clone of the session per racing thread."""

    def __init__(self, base: str, user: Any, threads: int) -> None:
        self.base = base
        self.main = requests.Session()
        self.main.headers["X-CSRFToken"] = self._csrf()
        body = {"email": user.email, "password": user.password}
        self.post("/auth/login", body, label="login").expect(200)
        self.main.headers["X-CSRFToken"] = self._csrf()  # a new session, a new token
        self.clones = [self._clone() for _ in range(threads)]

    def _csrf(self) -> str:
        return self.main.get(self.base + "/api/v1/auth/csrf", timeout=TIMEOUT).json()["csrf_token"]

    def _clone(self) -> requests.Session:
        clone = requests.Session()
        clone.cookies.update(self.main.cookies)
        clone.headers["X-CSRFToken"] = self.main.headers["X-CSRFToken"]
        return clone

    def post(
        self, path: str, json: Any = None, *, label: str, thread: int | None = None, **kw: Any
    ) -> Answer:
        """POST to /api/v1`path`, from the main session or from clone number `thread`."""
        session = self.main if thread is None else self.clones[thread]
        response = session.post(
            f"{self.base}/api/v1{path}", json={} if json is None else json, timeout=TIMEOUT, **kw
        )
        return answer(label, response)

    def racers(
        self, count: int, path: str, json: Any = None, *, label: str, first: int = 0
    ) -> list[Callable[[], Answer]]:
        """`count` calls of the same POST, each from its own clone (from number `first` on)."""
        return [
            partial(self.post, path, json, label=label, thread=i)
            for i in range(first, first + count)
        ]


def answer(label: str, response: requests.Response) -> Answer:
    try:
        body = response.json()
    except ValueError:
        body = response.text[:300]
    return Answer(label, response.status_code, body)


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            results[i] = calls[i]()
        except BaseException as err:  # reported below, in the test's thread
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    for result in results:
        if isinstance(result, BaseException):
            raise AssertionError(f"a racing call failed: {result!r}") from result
    return results


# --- what the database says ------------------------------------------------------------------


@dataclass
class OrderRow:
    """An order as the checks read it straight from the database."""

    id: int
    status: str
    holds_stock: bool
    refund_status: str | None
    buyer_id: int
    pin_id: int | None
    items: list[tuple[int, int, int]] = field(default_factory=list)  # (variant, coop, units)
    shipments: list[tuple[int, str]] = field(default_factory=list)  # (cooperative, status)
    events: Counter = field(default_factory=Counter)

    def shipment(self, cooperative_id: int) -> str | None:
        return next((s for c, s in self.shipments if c == cooperative_id), None)


def snapshot(app: Any, variant_ids: list[int]) -> tuple[dict[int, OrderRow], dict[int, int]]:
    """Every order with its items, shipments and event kinds; the variants' stock."""
    o, i, s, e = (m.__table__ for m in (Order, OrderItem, Shipment, OrderEvent))
    v = Variant.__table__
    with app.app_context():
        try:
            columns = (o.c.id, o.c.status, o.c.holds_stock, o.c.refund_status, o.c.buyer_id)
            orders = {r[0]: OrderRow(*r) for r in db.session.execute(select(*columns, o.c.pin_id))}
            for oid, *item in db.session.execute(
                select(i.c.order_id, i.c.variant_id, i.c.cooperative_id, i.c.quantity)
            ):
                orders[oid].items.append(tuple(item))
            for oid, coop, status in db.session.execute(
                select(s.c.order_id, s.c.cooperative_id, s.c.status)
            ):
                orders[oid].shipments.append((coop, status))
            for oid, kind in db.session.execute(select(e.c.order_id, e.c.kind)):
                orders[oid].events[kind] += 1
            stock = dict(
                db.session.execute(select(v.c.id, v.c.stock).where(v.c.id.in_(variant_ids))).all()
            )
        finally:
            db.session.remove()
    return orders, stock


def _holds_or_sold(order: OrderRow, cooperative_id: int) -> bool:
    """Whether an order's items of this cooperative are off the shelf (held, sold, shipped)."""
    if order.status == "pending_payment":
        return order.holds_stock
    if order.status == "refunded":  # refunded items that never shipped went back on the shelf
        return order.shipment(cooperative_id) in ("shipped", "delivered")
    return order.status in ("paid", "shipped", "delivered")


def invariant_breaks(
    orders: dict[int, OrderRow],
    stock: dict[int, int],
    initial: dict[int, int],
    provider_refunds: Callable[[OrderRow], int],
) -> list[str]:
    """What must hold after every round, whatever won: each broken rule, with its numbers."""
    out = Counter()
    for order in orders.values():
        for variant_id, coop, units in order.items:
            out[variant_id] += units if _holds_or_sold(order, coop) else 0
    breaks = [
        f"variant {vid}: {stock[vid]} on the shelf + {out[vid]} held or sold "
        f"= {stock[vid] + out[vid]}, started with {start}"
        for vid, start in initial.items()
        if stock[vid] + out[vid] != start
    ]
    for order in orders.values():
        n, kinds = f"order {order.id} ({order.status})", order.events
        if order.holds_stock != (order.status == "pending_payment"):
            breaks.append(f"{n} holds_stock={order.holds_stock}")
        coops = sorted({coop for _, coop, _ in order.items})
        shipped_to = sorted(coop for coop, _ in order.shipments)
        if shipped_to != (coops if order.status in WAS_PAID else []):
            breaks.append(f"{n} has shipments for cooperatives {shipped_to}, items from {coops}")
        if order.status == "refunded" and any(
            s in ("pending", "packed") for _, s in order.shipments
        ):
            breaks.append(f"{n} still has shipments to send: {order.shipments}")
        if kinds["paid"] != (1 if order.status in WAS_PAID else 0):
            breaks.append(f"{n} has {kinds['paid']} `paid` events")
        cancels = sum(kinds[k] for k in CANCEL_KINDS)
        if cancels > 1 or (order.status == "cancelled" and cancels != 1):
            breaks.append(f"{n} has {cancels} cancel events {dict(kinds)}")
        if sum(kinds[k] for k in REFUND_KINDS) > 1:
            breaks.append(f"{n} was refunded more than once: {dict(kinds)}")
        refunds = provider_refunds(order)
        if refunds != (0 if order.refund_status is None else 1):
            breaks.append(f"{n} refund_status={order.refund_status}, {refunds} refunds at provider")
        if order.refund_status == "pending" or (
            order.status == "refunded" and order.refund_status != "succeeded"
        ):
            breaks.append(f"{n} refund_status={order.refund_status} once every request answered")
    return breaks


def answer_breaks(answers: list[Answer], allowed: dict[str, set[str]]) -> list[str]:
    """No 5xx, the API's error shape on every failure, only the answers this pair allows."""
    breaks = []
    for a in answers:
        if a.status >= 500:
            breaks.append(f"{a.label} → {a.status}: {a.body}")
        elif a.status >= 400 and a.outcome.endswith("?"):
            breaks.append(f"{a.label} → {a.status} without the error shape: {a.body}")
        elif a.outcome not in allowed[a.label]:
            breaks.append(f"{a.label} → {a.outcome}, expected one of {allowed[a.label]}")
    return breaks


def demo_refunds(order: OrderRow) -> int:
    """Refunds that reached the demo provider: one `refund_requested` event each."""
    return order.events["refund_requested"]


# --- one pair's server and rounds ------------------------------------------------------------


class Race:
    """One pair raced round after round on one server, every round checked the same way."""

    def __init__(self, pair: str, app: Any, factory: Any, server: Any) -> None:
        self.pair, self.app, self.factory, self.server = pair, app, factory, server
        self.initial: dict[int, int] = {}  # variant id → its stock when created
        self.product_of: dict[int, int] = {}  # variant id → product id
        self.provider_refunds: Callable[[OrderRow], int] = demo_refunds
        self.round = 0

    def rounds(self) -> Iterator[int]:
        for self.round in range(1, ROUNDS + 1):
            yield self.round

    @property
    def where(self) -> str:
        return f"{self.pair}, round {self.round}/{ROUNDS}"

    def browser(self, user: Any, threads: int = 8) -> Browser:
        return Browser(self.server.url, user, threads)

    def variant(self, stock: int, cooperative_id: int | None = None, price: int = 8800) -> int:
        """A fresh variant (of a new product) whose stock the checks will account for."""
        variants = [{"name": "箱", "price": price, "stock": stock}]
        product = self.factory.product(cooperative_id, variants=variants)
        variant_id = product["variant_ids"][0]
        self.initial[variant_id], self.product_of[variant_id] = stock, product["id"]
        return variant_id

    def order(self, buyer: Browser, *lines: tuple[int, int], paid: bool = False) -> dict:
        """A new order placed (and paid with demo) through the API, before the race."""
        items = [{"variant_id": v, "quantity": q} for v, q in lines]
        order = buyer.post("/orders", {"items": items, "address": ADDRESS}, label="place")
        order = order.expect(201)
        if paid:
            order = buyer.post(f"/payments/demo/{order['id']}/confirm", label="pay").expect(200)
        return order

    def check(self, answers: list[Answer], allowed: dict[str, set[str]]) -> dict[int, OrderRow]:
        """The round's answers and the whole database; the orders, for the pair's own checks."""
        orders, stock = snapshot(self.app, list(self.initial))
        breaks = answer_breaks(answers, allowed)
        breaks += invariant_breaks(orders, stock, self.initial, self.provider_refunds)
        if breaks:
            seen = Counter(f"{a.label} {a.outcome}" for a in answers)
            log = ""
            if any(a.status >= 500 for a in answers):
                log = "\nserver log: " + self.server.log.read_text(errors="replace")[-2000:]
            raise AssertionError(
                f"{self.where}: {'; '.join(breaks[:6])} (answers: {dict(seen)}){log}"
            )
        return orders

    def expect(self, condition: bool, message: str) -> None:
        assert condition, f"{self.where}: {message}"


@pytest.fixture
def start_race(request: pytest.FixtureRequest, app, factory, start_server) -> Callable[..., Race]:
    """start_race(**env) → a Race on a new server (demo payments, no background expiry)."""

    def _start(**env: str) -> Race:
        pair = request.node.name.removeprefix("test_").split("[")[0].replace("_x_", " × ")
        return Race(pair, app, factory, start_server(**{**SERVER_ENV, **env}))

    return _start


# --- the pairs -------------------------------------------------------------------------------


def test_cancel_x_cancel(start_race, factory):
    race = start_race()
    buyer, admin = race.browser(factory.user("buyer"), 6), race.browser(factory.user("admin"), 2)
    for _ in race.rounds():
        order = race.order(buyer, (race.variant(stock=5), 2))
        path = f"/orders/{order['id']}/cancel"
        calls = buyer.racers(6, path, label="cancel") + admin.racers(2, path, label="cancel")
        answers = at_once(calls)
        orders = race.check(answers, {"cancel": {OK, CONFLICT}})
        won = [a.body for a in answers if a.status == 200]
        race.expect(orders[order["id"]].status == "cancelled", "the order is not cancelled")
        race.expect(bool(won), "no cancel won")
        race.expect(
            all(b["id"] == order["id"] and b["status"] == "cancelled" for b in won),
            f"a 200 cancel answered {[(b['id'], b['status']) for b in won]}",
        )


def test_confirm_x_confirm(start_race, factory):
    """An order from two cooperatives paid eight times at once: paid once, two shipments."""
    race = start_race()
    buyer = race.browser(factory.user("buyer"))
    north, south = factory.cooperative(), factory.cooperative()
    for _ in race.rounds():
        order = race.order(buyer, (race.variant(5, north), 1), (race.variant(5, south), 2))
        answers = at_once(buyer.racers(8, f"/payments/demo/{order['id']}/confirm", label="confirm"))
        race.check(answers, {"confirm": {OK}})
        statuses = {a.body["status"] for a in answers}
        race.expect(statuses == {"paid"}, f"confirms answered {statuses}")


def test_confirm_x_cancel(start_race, factory):
    race = start_race()
    buyer = race.browser(factory.user("buyer"))
    for _ in race.rounds():
        order = race.order(buyer, (race.variant(stock=4), 2))
        calls = buyer.racers(4, f"/payments/demo/{order['id']}/confirm", label="confirm")
        calls += buyer.racers(4, f"/orders/{order['id']}/cancel", label="cancel", first=4)
        orders = race.check(at_once(calls), {"confirm": {OK, CONFLICT}, "cancel": {OK, CONFLICT}})
        final = orders[order["id"]].status
        race.expect(final in ("cancelled", "paid", "refunded"), f"the order ends {final}")


def test_webhook_x_cancel(start_race, factory, stripe_stub, app):
    """Stripe says paid (twice the same event, twice new ones) while the buyer cancels; on odd
    rounds another buyer wants the same stock, so a late payment sometimes finds none. A
    duplicate that arrives while the same event is being applied is sent back (409), never
    acknowledged unapplied: every event of the round ends applied."""
    race = start_race(**stripe_settings(stripe_stub))
    intents: dict[int, str] = {}
    race.provider_refunds = lambda order: sum(
        1 for r in stripe_stub.refunds if r["payment_intent"] == intents.get(order.id)
    )
    buyer, rival = race.browser(factory.user("buyer"), 4), race.browser(factory.user("buyer"), 1)
    busy = "409 webhook_in_progress"
    allowed = {"webhook": {OK, busy}, "cancel": {OK, CONFLICT}, "rival": {"201", "409 sold_out"}}
    for n in race.rounds():
        variant = race.variant(stock=2)
        order = race.order(buyer, (variant, 2))
        payment = buyer.post(f"/orders/{order['id']}/payment", label="pay").expect(200)
        intent = intents[order["id"]] = payment["client_secret"].split("_secret_")[0]
        succeeded = stripe_stub.set_status(intent, "succeeded")
        once = event("payment_intent.succeeded", succeeded)
        news = [once, once, *(event("payment_intent.succeeded", succeeded) for _ in range(2))]
        calls = [partial(deliver, race.server.url, payload) for payload in news]
        calls += buyer.racers(4, f"/orders/{order['id']}/cancel", label="cancel")
        if n % 2:
            lines = {"items": [{"variant_id": variant, "quantity": 2}], "address": ADDRESS}
            calls += [partial(until_in_stock, *rival.racers(1, "/orders", lines, label="rival"))]
        row = race.check(at_once(calls), allowed)[order["id"]]
        with app.app_context():
            unapplied = db.session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(
                    WebhookEvent.id.in_({p["id"] for p in news}), WebhookEvent.applied_at.is_(None)
                )
            )
            db.session.remove()
        race.expect(unapplied == 0, f"{unapplied} event(s) of the round left unapplied")
        race.expect(row.status in ("paid", "refunded", "cancelled"), f"the order ends {row.status}")
        if row.status == "cancelled":  # the payment lost to the cancel and found no stock
            race.expect(row.events["late_payment_no_stock"] == 1, f"payment lost: {row.events}")


def until_in_stock(call: Callable[[], Answer], attempts: int = 40) -> Answer:
    """A buyer who keeps tapping while the stock is gone, as a flash-sale crowd does: the
    stock a cancel gives back is then sometimes taken before the late payment can retake it."""
    for _ in range(attempts):
        got = call()
        if got.outcome != "409 sold_out":
            break
        time.sleep(0.01)
    return got


def deliver(base: str, payload: dict) -> Answer:
    """One webhook delivery, signed as Stripe signs it."""
    body, headers = signed(payload, WEBHOOK_SECRET)
    response = requests.post(f"{base}/webhooks/stripe", data=body, headers=headers, timeout=TIMEOUT)
    return answer("webhook", response)


def test_expire_x_confirm(start_race, app, factory):
    """Two expiry runners (in this process, as the server's task would run) against confirms."""
    from orders.services import expire_due

    race = start_race()
    buyer = race.browser(factory.user("buyer"), 6)

    def expire() -> int:
        with app.app_context():
            try:
                return expire_due(clock=lambda: utcnow() + timedelta(days=1))
            finally:
                db.session.remove()

    for _ in race.rounds():
        orders = [race.order(buyer, (race.variant(stock=3), 2)) for _ in range(3)]
        calls = [
            call
            for i, order in enumerate(orders)
            for call in buyer.racers(
                2, f"/payments/demo/{order['id']}/confirm", label="confirm", first=2 * i
            )
        ]
        answers = at_once([*calls, expire, expire])[:-2]
        rows = race.check(answers, {"confirm": {OK, CONFLICT}})
        for confirmed in {a.body["id"] for a in answers if a.status == 200}:
            race.expect(rows[confirmed].status == "paid", f"order {confirmed} confirmed, not paid")
        ends = {rows[o["id"]].status for o in orders}
        race.expect(ends <= {"paid", "cancelled"}, f"orders end {ends}")


def test_refund_x_refund(start_race, factory):
    """The buyer and the service centre refund the same paid order at once."""
    race = start_race()
    buyer, admin = race.browser(factory.user("buyer"), 5), race.browser(factory.user("admin"), 3)
    north, south = factory.cooperative(), factory.cooperative()
    for _ in race.rounds():
        lines = [(race.variant(4, north), 1), (race.variant(4, south), 3)]
        order = race.order(buyer, *lines, paid=True)
        path = f"/orders/{order['id']}/cancel"
        answers = at_once(
            buyer.racers(5, path, label="refund") + admin.racers(3, path, label="refund")
        )
        orders = race.check(answers, {"refund": {OK, CONFLICT}})
        race.expect(orders[order["id"]].status == "refunded", "the order is not refunded")
        others = {a.body["id"] for a in answers if a.status == 200} - {order["id"]}
        race.expect(not others, f"a refund answered with orders {others}")


def test_refund_x_ship(start_race, factory):
    """A buyer refunds while the cooperative ships: one of them wins, never both."""
    race = start_race()
    coop_id = factory.cooperative()
    buyer = race.browser(factory.user("buyer"), 4)
    coop = race.browser(factory.user("coop", cooperative_id=coop_id), 4)
    for _ in race.rounds():
        order = race.order(buyer, (race.variant(3, coop_id), 2), paid=True)
        ship = f"/fulfilment/shipments/{order['shipments'][0]['id']}/ship"
        parcel = {"carrier": "顺丰", "tracking_number": f"SF{order['id']:08d}"}
        calls = buyer.racers(4, f"/orders/{order['id']}/cancel", label="refund")
        calls += coop.racers(4, ship, parcel, label="ship")
        answers = at_once(calls)
        row = race.check(answers, {"refund": {OK, CONFLICT}, "ship": {OK, CONFLICT}})[order["id"]]
        won, shipment = {a.label for a in answers if a.status == 200}, row.shipment(coop_id)
        ends = f"winners {won}, order {row.status}, shipment {shipment}, events {row.events}"
        race.expect(won in ({"refund"}, {"ship"}), ends)
        if won == {"ship"}:
            race.expect(row.status == "shipped" and shipment == "shipped", ends)
            race.expect(row.refund_status is None, f"{ends}, refund_status {row.refund_status}")
        else:
            race.expect(row.status == "refunded" and shipment == "cancelled", ends)
            race.expect(not row.events["shipment_shipped"], ends)


def test_pack_x_cancel(start_race, factory):
    """Packing does not stop a buyer's refund: every round ends refunded, the shipment withdrawn."""
    race = start_race()
    coop_id = factory.cooperative()
    buyer = race.browser(factory.user("buyer"), 4)
    coop = race.browser(factory.user("coop", cooperative_id=coop_id), 4)
    for _ in race.rounds():
        order = race.order(buyer, (race.variant(3, coop_id), 2), paid=True)
        calls = buyer.racers(4, f"/orders/{order['id']}/cancel", label="cancel")
        calls += coop.racers(
            4, f"/fulfilment/shipments/{order['shipments'][0]['id']}/pack", label="pack"
        )
        answers = at_once(calls)
        row = race.check(answers, {"cancel": {OK, CONFLICT}, "pack": {OK, CONFLICT}})[order["id"]]
        ends = f"order {row.status}, shipment {row.shipment(coop_id)}"
        race.expect(row.status == "refunded" and row.shipment(coop_id) == "cancelled", ends)
        race.expect(any(a.label == "cancel" and a.status == 200 for a in answers), "no cancel won")


def test_live_tap_x_cancel(start_race, factory):
    """The buyer taps *buy* on a pin limited to 2 while cancelling the orders they hold under it
    (every other round, one of them paid first, so its cancel is a refund)."""
    race = start_race(MAX_UNPAID_ORDERS="3")
    buyer_ref = factory.user("buyer")
    buyer, host = race.browser(buyer_ref, 10), race.browser(factory.user("host"), 0)
    variant = race.variant(stock=1000, price=8800)
    live = host.post("/live-sessions", {"title": "尉犁羊肉专场"}, label="session").expect(201)
    host.post(f"/live-sessions/{live['id']}/start", label="start").expect(200)
    pin = {
        "product_id": race.product_of[variant],
        "live_prices": {str(variant): 6800},
        "per_buyer_limit": 2,
    }
    pin_id = host.post(f"/live-sessions/{live['id']}/pins", pin, label="pin").expect(201)["id"]
    tap = {"variant_id": variant, "quantity": 1, "address": ADDRESS}
    allowed = {
        "tap": {"201", "200", "409 limit_exceeded", "409 sold_out", "409 too_many_unpaid"},
        "cancel": {OK, CONFLICT},
    }
    held: list[OrderRow] = []
    for n in race.rounds():
        unpaid = [o for o in held if o.status == "pending_payment"]
        if n % 2 and unpaid:
            buyer.post(f"/payments/demo/{unpaid[0].id}/confirm", label="pay").expect(200)
        calls = [
            partial(
                buyer.post,
                f"/live-sessions/{live['id']}/checkout",
                tap,
                label="tap",
                thread=i,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            for i in range(6)
        ]
        for i, order in enumerate(held[:2]):
            calls += buyer.racers(2, f"/orders/{order.id}/cancel", label="cancel", first=6 + 2 * i)
        orders = race.check(at_once(calls), allowed)
        held = [
            o
            for o in orders.values()
            if o.pin_id == pin_id and o.buyer_id == buyer_ref.id and o.status in ACTIVE
        ]
        units = sum(q for o in held for _, _, q in o.items)
        race.expect(units <= 2, f"the buyer holds {units} units under a limit of 2: {held}")
