"""Faults that cost money, played against a real server on PostgreSQL: a Stripe that hangs, a
Stripe that does the work and then drops the connection before answering, a redelivery while the
first delivery is still applying, a server killed (SIGKILL) in the middle of a webhook.

After each fault the books must balance, read from the database and the stand-in's ledger:
stock conserved, no payment kept for a cancelled order, the money kept at the provider equal to
the paid totals less refunds, no webhook claim left unapplied, no hold past its due time.
(The database and Redis faults are in tests/scale; expiry under a hanging Stripe in
test_expiry_batches.py.)
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from orders.models import Order, WebhookEvent
from shop.extensions import db
from shop.models import utcnow
from tests.orders.conftest import stripe_settings
from tests.orders.stripe_stub import StripeStub, event
from tests.orders.test_races import (
    SERVER_ENV,
    WAS_PAID,
    Answer,
    Browser,
    Race,
    deliver,
    invariant_breaks,
    snapshot,
)

pytestmark = [pytest.mark.only_db("postgresql"), pytest.mark.slow, pytest.mark.stripe]

FAULT_ENV = {
    **SERVER_ENV,
    "STRIPE_CONNECT_TIMEOUT_SECONDS": "1",
    "STRIPE_READ_TIMEOUT_SECONDS": "1",
    "WEBHOOK_LEASE_SECONDS": "3",
}
HANG_DETECTOR = 20  # seconds: an answer slower than this is a hang, whatever the fault


class FaultyStripe(StripeStub):
    """The stand-in with two more faults.

    - `hold(method, path)`: matching requests wait (before Stripe does anything) until
      `release()`; `arrived` is set when the first one is waiting.
    - `drop_answers(method, path, times)`: matching requests are carried out (an intent is
      created, a refund made, a cancel done, and the answer kept for its Idempotency-Key),
      then the connection is closed without an answer, `times` times.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: tuple[str, str] | None = None
        self.arrived = threading.Event()
        self._released = threading.Event()
        self.dropping: dict[tuple[str, str], int] = {}
        self.dropped = 0
        self._server.handle_error = lambda *_: None  # a dropped answer is the point, not news

    def hold(self, method: str, path: str) -> None:
        self.held, self._released = (method, path), threading.Event()
        self.arrived.clear()

    def release(self) -> None:
        self.held = None
        self._released.set()

    def drop_answers(self, method: str, path: str, times: int) -> None:
        self.dropping[(method, path)] = times

    def _answer(self, method: str, path: str, headers, body: str) -> tuple[int, dict]:
        if self.held is not None and self.held == (method, path):
            self.arrived.set()
            self._released.wait(HANG_DETECTOR * 3)
        answer = super()._answer(method, path, headers, body)
        with self._lock:
            left = self.dropping.get((method, path), 0)
            if left:
                self.dropping[(method, path)] = left - 1
                self.dropped += 1
                raise ConnectionResetError("the answer is lost on the way back")
        return answer


@pytest.fixture
def faulty_stripe():
    with FaultyStripe() as stub:
        yield stub


class Books:
    """The scene: a server on Stripe (the stand-in), a buyer, fresh variants; and the checks."""

    def __init__(self, app, factory, start_server, stub: FaultyStripe, **env: str) -> None:
        self.app, self.factory, self.stub = app, factory, stub
        self.start_server = start_server
        self.env = {**FAULT_ENV, **stripe_settings(stub), **env}
        self.server = start_server(**self.env)
        self.race = Race("faults", app, factory, self.server)
        self.race.provider_refunds = self.refunds_at_provider
        self.buyer_ref = factory.user("buyer")
        self.buyer = Browser(self.server.url, self.buyer_ref, 2)
        self.intents: dict[int, str] = {}

    def restart(self, **env: str) -> None:
        """A new server process on the same port and database (after a kill)."""
        self.server = self.start_server(**{**self.env, **env, "PORT": str(self.server.port)})
        self.race.server = self.server

    def order(self, units: int = 1, stock: int = 5) -> dict:
        return self.race.order(self.buyer, (self.race.variant(stock=stock), units))

    def pay_start(self, order: dict) -> Answer:
        answer = self.buyer.post(f"/orders/{order['id']}/payment", label="pay")
        if answer.status == 200:
            self.intents[order["id"]] = answer.body["client_secret"].split("_secret_")[0]
        return answer

    def paid_at_stripe(self, order: dict) -> dict:
        """The buyer pays: the intent succeeds at Stripe (its webhook is still to come)."""
        self.pay_start(order).expect(200)
        return self.stub.set_status(self.intents[order["id"]], "succeeded")

    def refunds_at_provider(self, order) -> int:
        intent = self.intents.get(order.id)
        return sum(1 for r in self.stub.refunds if r["payment_intent"] == intent)

    def balance(self) -> None:
        """Every rule of the module docstring, from the database and the stand-in's ledger."""
        orders, stock = snapshot(self.app, list(self.race.initial))
        breaks = invariant_breaks(orders, stock, self.race.initial, self.refunds_at_provider)
        with self.app.app_context():
            try:
                rows = db.session.execute(
                    select(Order.id, Order.status, Order.total, Order.refunded_amount)
                ).all()
                unapplied = db.session.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.applied_at.is_(None))
                )
                overdue = db.session.scalar(
                    select(func.count())
                    .select_from(Order)
                    .where(Order.status == "pending_payment", Order.expires_at < utcnow())
                )
            finally:
                db.session.remove()
        kept_by_order = {oid: self.kept(self.intents.get(oid)) for oid, *_ in rows}
        for oid, status, _total, _refunded in rows:
            if status == "cancelled" and kept_by_order[oid]:
                breaks.append(f"order {oid} is cancelled but Stripe kept {kept_by_order[oid]}")
        owed = sum(total - refunded for _, status, total, refunded in rows if status in WAS_PAID)
        kept = sum(self.kept(intent) for intent in self.intents.values())
        if kept != owed:
            breaks.append(f"Stripe kept {kept} fen, the orders account for {owed}")
        if unapplied:
            breaks.append(f"{unapplied} webhook claim(s) left unapplied")
        if overdue:
            breaks.append(f"{overdue} hold(s) past due")
        assert not breaks, "; ".join(breaks)

    def kept(self, intent_id: str | None) -> int:
        """What Stripe holds for an intent: received less refunded."""
        if intent_id is None or intent_id not in self.stub.intents:
            return 0
        received = self.stub.intents[intent_id]["amount_received"]
        charge = self.stub.charges.get(intent_id)
        return received - (charge["amount_refunded"] if charge else 0)


@pytest.fixture
def books(app, factory, start_server, faulty_stripe) -> Callable[..., Books]:
    return lambda **env: Books(app, factory, start_server, faulty_stripe, **env)


def in_thread(call: Callable[[], Any]) -> Callable[[], Any]:
    """Start `call` now; the returned function waits for its result (or its exception)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as err:
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait() -> Any:
        thread.join(HANG_DETECTOR * 3)
        assert not thread.is_alive(), "the call hung"
        if "error" in result:
            raise result["error"]
        return result["value"]

    return wait


def until(check: Callable[[], Any], seconds: float = HANG_DETECTOR) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    return check()


# --- the faults ------------------------------------------------------------------------------


def test_a_hanging_stripe_answers_503_holds_nothing_and_the_retry_pays_once(books, faulty_stripe):
    scene = books()
    order = scene.order()
    faulty_stripe.hold("POST", "/v1/payment_intents")
    paying = in_thread(lambda: scene.pay_start(order))
    assert faulty_stripe.arrived.wait(HANG_DETECTOR)

    # while Stripe hangs, the shop goes on: another order is placed and cancelled at once
    other = scene.order()
    scene.buyer.post(f"/orders/{other['id']}/cancel", label="cancel").expect(200)
    hung = paying()  # Stripe's read timeout (1 s, and two retries) ended the wait
    assert hung.status == 503, hung.body
    assert hung.body["error"]["code"] == "payment_unavailable"

    faulty_stripe.release()  # the requests Stripe was holding are carried out now
    intent = scene.paid_at_stripe(order)  # the buyer tries again: the same key, one intent
    assert sum(1 for i in faulty_stripe.intents.values() if i["id"] == intent["id"]) == 1
    paid = deliver(scene.server.url, event("payment_intent.succeeded", intent))
    assert paid.status == 200 and paid.body["result"] == "paid"
    scene.balance()


def test_stripe_that_acts_then_drops_the_answer_acts_once(books, faulty_stripe):
    """Create, refund and cancel each reach Stripe, which does the work and loses the answer
    once: the library's retry with the same Idempotency-Key gets the kept answer, so there is
    one intent, one refund and one cancel, and the shop's books agree with Stripe's."""
    scene = books()
    paid_order, cancelled_order = scene.order(units=2), scene.order()
    for path in ("/v1/payment_intents", "/v1/refunds"):
        faulty_stripe.drop_answers("POST", path, times=1)

    intent = scene.paid_at_stripe(paid_order)
    delivered = deliver(scene.server.url, event("payment_intent.succeeded", intent))
    assert delivered.body["result"] == "paid"
    refund = scene.buyer.post(f"/orders/{paid_order['id']}/cancel", label="refund").expect(200)
    assert refund["status"] == "refunded"

    scene.pay_start(cancelled_order).expect(200)
    cancel_path = f"/v1/payment_intents/{scene.intents[cancelled_order['id']]}/cancel"
    faulty_stripe.drop_answers("POST", cancel_path, times=1)
    scene.buyer.post(f"/orders/{cancelled_order['id']}/cancel", label="cancel").expect(200)

    assert faulty_stripe.dropped == 3
    assert len(faulty_stripe.intents) == 2
    assert [r["payment_intent"] for r in faulty_stripe.refunds] == [intent["id"]]
    assert faulty_stripe.intents[scene.intents[cancelled_order["id"]]]["status"] == "canceled"
    scene.balance()


def test_a_refund_whose_answer_never_comes_back_is_settled_by_its_webhook(books, faulty_stripe):
    """Every attempt reaches Stripe and every answer is lost: the buyer hears 503, the refund
    stays pending (never made twice), and Stripe's refund event settles it."""
    scene = books()
    order = scene.order()
    intent = scene.paid_at_stripe(order)
    deliver(scene.server.url, event("payment_intent.succeeded", intent)).expect(200)
    faulty_stripe.drop_answers("POST", "/v1/refunds", times=3)  # the call and both retries

    lost = scene.buyer.post(f"/orders/{order['id']}/cancel", label="refund")
    assert lost.status == 503, lost.body
    assert len(faulty_stripe.refunds) == 1  # Stripe made it once, whatever the retries

    refund = dict(faulty_stripe.refunds[0])
    settled = deliver(scene.server.url, event("refund.updated", refund))
    assert settled.status == 200, settled.body
    assert scene.buyer.post(f"/orders/{order['id']}/cancel", label="again").status in (200, 409)
    scene.balance()


def test_a_redelivery_while_the_first_delivery_applies_is_sent_back(books, faulty_stripe):
    scene = books()
    order = scene.order()
    intent = scene.paid_at_stripe(order)
    payload = event("payment_intent.succeeded", intent)
    faulty_stripe.hold("GET", f"/v1/payment_intents/{intent['id']}")  # applying asks Stripe
    first = in_thread(lambda: deliver(scene.server.url, payload))
    assert faulty_stripe.arrived.wait(HANG_DETECTOR)

    again = deliver(scene.server.url, payload)
    assert again.status == 409, again.body
    assert again.body["error"]["code"] == "webhook_in_progress"

    faulty_stripe.release()
    applied = first()
    assert applied.status == 200, applied.body
    assert deliver(scene.server.url, payload).body["result"] == "duplicate"
    scene.balance()


def test_a_server_killed_mid_webhook_leaves_no_payment_unapplied(books, faulty_stripe):
    """SIGKILL while a payment event is being applied: the claim is recorded, nothing applied.
    A redelivery within the lease is sent back (409), so Stripe keeps retrying; the restarted
    server's background loop applies the stored claim once the lease runs out, by itself."""
    scene = books()
    order = scene.order()
    intent = scene.paid_at_stripe(order)
    payload = event("payment_intent.succeeded", intent)
    faulty_stripe.hold("GET", f"/v1/payment_intents/{intent['id']}")
    dying = in_thread(lambda: deliver(scene.server.url, payload))
    assert faulty_stripe.arrived.wait(HANG_DETECTOR)

    scene.server.proc.send_signal(signal.SIGKILL)
    scene.server.proc.wait(10)
    with pytest.raises(Exception):  # noqa: B017 - the connection died with the server
        dying()
    faulty_stripe.release()

    scene.restart(RUN_BACKGROUND_TASKS="1", EXPIRY_INTERVAL_SECONDS="0.5")
    early = deliver(scene.server.url, payload)
    assert early.status in (200, 409), early.body  # 409 while the dead delivery's lease holds
    status = until(lambda: scene.race.check([], {}).get(order["id"]).status == "paid")
    assert status, "the killed delivery's payment was never applied"
    assert deliver(scene.server.url, payload).body["result"] == "duplicate"
    scene.balance()
