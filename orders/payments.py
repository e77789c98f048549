"""Payment gateways (demo and Stripe), intent pacing, and the flows that call them.

Network calls to the provider always happen outside any database transaction: the order row
is locked only for the short write that records what the provider answered. An unpaid Stripe
order that gets cancelled has its PaymentIntent cancelled too, so the buyer can no longer pay an
order that is gone: on `order_changed` (sent after the cancel committed) for a buyer's or an
admin's cancel; by `services.expire_due` after its batches for an expiry (beside the loop).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import stripe
from flask import current_app

from orders import services
from orders.errors import InvalidTransition, PaymentRateLimited, PaymentUnavailable
from orders.models import Order, OrderStatus
from shop import signals
from shop.extensions import db
from shop.i18n import N_
from shop.redis_link import Breaker, bounded_pool

log = logging.getLogger(__name__)

RATE_LIMIT_BACKOFF = (0.25, 0.75)  # seconds between our own retries of a Stripe 429
MAX_PACING_WAIT = 10.0  # a caller waits at most this long for its turn to create an intent


@dataclass(frozen=True)
class PaymentStart:
    """What the browser needs to take the payment."""

    provider: str
    client_secret: str | None
    publishable_key: str | None


@dataclass(frozen=True)
class OrderRef:
    """What a provider call needs of an order, copied before the transaction ends: a gateway
    never touches an ORM object, so no attribute load can open a transaction (and hold a
    database connection) while the provider is slow."""

    id: int
    number: str
    total: int
    currency: str
    payment_intent_id: str | None

    @classmethod
    def of(cls, order: Order) -> OrderRef:
        return cls(order.id, order.number, order.total, order.currency, order.payment_intent_id)


@dataclass(frozen=True)
class RefundResult:
    """What a provider says of a refund: its id (None if it never got one) and its status
    (`pending`, `succeeded`, `failed`, `canceled`, as `RefundStatus`)."""

    refund_id: str | None
    status: str


class Gateway(Protocol):
    name: str

    def create_intent(self, order: OrderRef) -> tuple[str, str]: ...

    def retrieve_intent(self, intent_id: str) -> dict: ...

    def refund(self, order: OrderRef, *, key: str) -> RefundResult: ...


class DemoGateway:
    """Moves no money: every payment and refund only exists in our own database."""

    name = "demo"

    def create_intent(self, order: OrderRef) -> tuple[str, str]:
        return f"demo_pi_{order.number}", f"demo_pi_{order.number}_secret"

    def retrieve_intent(self, intent_id: str) -> dict:
        return {"id": intent_id, "status": "succeeded"}

    def refund(self, order: OrderRef, *, key: str) -> RefundResult:
        return RefundResult(f"demo_re_{order.number}", "succeeded")


class StripeGateway:
    """PaymentIntents and refunds through stripe-python's `StripeClient`."""

    name = "stripe"

    def __init__(
        self,
        secret_key: str,
        api_base: str | None,
        pacer: Pacer,
        *,
        timeout: tuple[float, float] = (3.0, 10.0),
    ) -> None:
        # Explicit (connect, read) timeouts: stripe-python waits 80 s by default, far longer
        # than a buyer in a live sale waits for the pay button (two retries on top).
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=2,
            http_client=stripe.new_default_http_client(timeout=timeout),
        )
        self.pacer = pacer

    def create_intent(self, order: OrderRef) -> tuple[str, str]:
        self.pacer.wait_turn()
        params = {
            "amount": order.total,
            "currency": order.currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "metadata": {"order_id": str(order.id), "order_number": order.number},
        }
        intent = _call(
            lambda: self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": f"order-{order.id}-pi"}
            )
        )
        return intent.id, intent.client_secret

    def retrieve_intent(self, intent_id: str) -> dict:
        intent = _call(lambda: self.client.v1.payment_intents.retrieve(intent_id)).to_dict()
        return {
            "id": intent["id"],
            "status": intent["status"],
            "amount": intent.get("amount"),
            "currency": intent.get("currency"),
            "metadata": intent.get("metadata") or {},
        }

    def refund(self, order: OrderRef, *, key: str) -> RefundResult:
        """Refund the order's payment in full. A refusal because it is refunded already is
        an answer (the refund happened), not an outage."""
        try:
            refund = _call(
                lambda: self.client.v1.refunds.create(
                    params={"payment_intent": order.payment_intent_id},
                    options={"idempotency_key": key},
                ),
                answers=("charge_already_refunded",),
            )
        except _Answered:
            return RefundResult(None, "succeeded")
        return RefundResult(refund.id, _REFUND_STATES.get(refund.status, "pending"))

    def cancel_intent(self, intent_id: str, *, order_id: int) -> str:
        """Cancel an intent so it can no longer be paid; returns its status at Stripe afterwards.

        Stripe refuses (`payment_intent_unexpected_state`) once a payment succeeded or is
        processing: that is an answer, not an outage, so the status it reports is returned.
        """

        def request() -> str:
            try:
                return self.client.v1.payment_intents.cancel(
                    intent_id, options={"idempotency_key": f"order-{order_id}-pi-cancel"}
                ).status
            except stripe.InvalidRequestError as err:
                if err.code != "payment_intent_unexpected_state":
                    raise
                intent = err.error.payment_intent if err.error else None
                return intent.status if intent is not None else "unexpected_state"

        return _call(request)


# Stripe's refund states, as ours: `requires_action` waits for the buyer's bank like pending.
_REFUND_STATES = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


class _Answered(Exception):
    """Stripe refused with an error code that is itself the answer the caller wants."""


def _call(request, *, answers: tuple[str, ...] = ()):
    """Run one Stripe request: our own back-off on 429, clean domain errors for outages."""
    for attempt in range(len(RATE_LIMIT_BACKOFF) + 1):
        try:
            return request()
        except stripe.InvalidRequestError as err:
            if err.code in answers:
                raise _Answered(err.code) from None
            log.error("Stripe refused a request: %s", err)
            raise PaymentUnavailable() from None
        except stripe.RateLimitError:
            if attempt == len(RATE_LIMIT_BACKOFF):
                log.warning("Stripe kept answering 429; giving up for now")
                raise PaymentRateLimited() from None
            time.sleep(RATE_LIMIT_BACKOFF[attempt])
        except (stripe.APIConnectionError, stripe.APIError) as err:
            log.warning("Stripe unavailable: %s", err)
            raise PaymentUnavailable() from None
        except stripe.StripeError as err:
            log.error("Stripe refused a request: %s", err)
            raise PaymentUnavailable() from None
    raise AssertionError("unreachable")


class Pacer:
    """Spaces intent creations to `rate` per second, process-wide, or Redis-shared when given.

    Each caller reserves the next free slot and sleeps until it; nobody waits longer than
    MAX_PACING_WAIT (they get a clean 429 instead), so a flash crowd is smoothed, not dropped.
    """

    _SCRIPT = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
    if slot < now then slot = now end
    redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', 60000)
    return slot - now
    """

    def __init__(
        self,
        rate: float,
        redis_url: str | None = None,
        key: str = "farmlive:pi-pace",
        *,
        timeout: float = 1.0,
        retry_after: float = 5.0,
        size: int = 50,
    ):
        self.step = 1.0 / rate if rate > 0 else 0.0
        self.key = key
        self._lock = threading.Lock()
        self._next = 0.0
        self._script = None
        self._redis = Breaker("Stripe pacing", retry_after)
        if redis_url:
            import redis

            client = redis.Redis(connection_pool=bounded_pool(redis_url, timeout, size))
            self._script = client.register_script(self._SCRIPT)

    def reserve(self) -> float:
        """Reserve a slot; returns how many seconds to wait for it."""
        if self.step == 0:
            return 0.0
        if self._script is not None and self._redis.allows():
            try:
                delay = int(self._script(keys=[self.key], args=[int(self.step * 1e6)])) / 1e6
            except Exception as err:  # Redis down: pace this process alone rather than fail
                self._redis.failed(err)
            else:
                self._redis.succeeded()
                return delay
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.step
            return slot - now

    def wait_turn(self) -> None:
        delay = self.reserve()
        if delay > MAX_PACING_WAIT:
            raise PaymentRateLimited()
        if delay > 0:
            time.sleep(delay)


_pacers: dict[tuple, Pacer] = {}
_pacers_lock = threading.Lock()


def _pacer() -> Pacer:
    config = current_app.config
    key = (config["STRIPE_INTENTS_PER_SECOND"], config.get("REDIS_URL"))
    with _pacers_lock:
        if key not in _pacers:
            _pacers[key] = Pacer(
                key[0],
                key[1],
                timeout=config["REDIS_TIMEOUT_SECONDS"],
                retry_after=config["REDIS_CHECK_SECONDS"],
                size=config["REDIS_MAX_CONNECTIONS"],
            )
        return _pacers[key]


def gateway(name: str | None = None) -> Gateway:
    """The configured gateway, or the one an order was paid through."""
    name = name or current_app.config["PAYMENT_PROVIDER"]
    if name == "stripe":
        config = current_app.config
        if not config.get("STRIPE_SECRET_KEY"):
            raise PaymentUnavailable(N_("Stripe is not configured on this server."))
        timeout = (
            float(config["STRIPE_CONNECT_TIMEOUT_SECONDS"]),
            float(config["STRIPE_READ_TIMEOUT_SECONDS"]),
        )
        return StripeGateway(
            config["STRIPE_SECRET_KEY"], config.get("STRIPE_API_BASE"), _pacer(), timeout=timeout
        )
    return DemoGateway()


def start_payment(order_id: int, *, gateway: Gateway) -> PaymentStart:
    """One intent per order: created once (idempotency key from the order), then reused."""
    order = services.get_order(order_id)
    publishable = (
        current_app.config.get("STRIPE_PUBLISHABLE_KEY") if gateway.name == "stripe" else None
    )
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise InvalidTransition(f"Order {order.number} is {order.status}; nothing to pay.")
    if order.payment_intent_id and order.payment_provider == gateway.name:
        return PaymentStart(gateway.name, order.payment_client_secret, publishable)
    ref = OrderRef.of(order)
    db.session.commit()  # end the read: no transaction stays open across the network call
    intent_id, client_secret = gateway.create_intent(ref)

    order = services.lock_order(order_id)
    services.require(order, OrderStatus.PENDING_PAYMENT, action="be paid")
    if not (order.payment_intent_id and order.payment_provider == gateway.name):
        order.payment_provider = gateway.name
        order.payment_intent_id = intent_id
        order.payment_client_secret = client_secret
        services.record(order, "payment_started", data={"provider": gateway.name})
    start = PaymentStart(gateway.name, order.payment_client_secret, publishable)
    db.session.commit()
    return start


def cancel_intent(order_id: int) -> str | None:
    """Cancel a cancelled order's Stripe intent, and say in its history how that went.

    Never raises for Stripe: the order is already cancelled in our database. When Stripe
    answers that the payment went through, the payment takes the late-payment path at once
    (stock taken again, or refunded) instead of waiting for its webhook. Returns what was
    recorded, or None when there was nothing to cancel (demo, never started, paid).
    """
    order = services.get_order(order_id)
    intent_id = order.payment_intent_id
    wanted = (
        order.status == OrderStatus.CANCELLED
        and order.payment_provider == "stripe"
        and intent_id is not None
        and order.paid_at is None
        and order.refund_status is None  # a late payment being refunded: nothing to cancel
    )
    db.session.commit()  # no transaction open across the network call
    if not wanted:
        return None
    try:
        status = gateway("stripe").cancel_intent(intent_id, order_id=order_id)
    except (PaymentUnavailable, PaymentRateLimited):
        log.warning("could not cancel intent %s of cancelled order %s", intent_id, order_id)
        status = "unknown"
    kind = "stripe_payment_cancelled" if status == "canceled" else "stripe_payment_not_cancelled"
    order = services.lock_order(order_id)
    services.record(order, kind, data={"intent": intent_id, "intent_status": status})
    db.session.commit()
    if status == "succeeded":
        from orders.refunds import settle_intent  # refunds builds on this module

        settle_intent(order_id, gateway("stripe").retrieve_intent(intent_id))
    return kind


@signals.order_changed.connect
def _on_order_changed(
    app,
    order_id: int | None = None,
    status: str | None = None,
    reason: str | None = None,
    **_,
) -> None:
    """After an unpaid order's cancel by its buyer or an admin committed: cancel its intent.

    Not for an expiry (`reason="expired"`): `services.expire_due` collects those intents and
    cancels them after its last batch, or hands them to the loop's worker, so that one slow
    Stripe answer never holds up the holds expiring after it. A failure here must not fail
    the cancel that sent the news: it is logged and dropped.
    """
    if status != OrderStatus.CANCELLED or not order_id or reason == "expired":
        return
    try:
        cancel_intent(order_id)
    except Exception:
        db.session.rollback()
        log.exception("cancelling the intent of order %s failed", order_id)
