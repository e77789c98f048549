"""Paying the flash-sale orders: the demo provider, or the real `stripe` library against the
order tests' local Stripe stand-in, counting PaymentIntent creations and their peak rate."""

from __future__ import annotations

import asyncio
import time

from bench.clients import Browser

WEBHOOK_SECRET = "whsec_bench_" + "0" * 24


def stripe_stub():
    """The order tests' stand-in (tests/orders/stripe_stub.py), timing each intent creation."""
    from tests.orders.stripe_stub import StripeStub

    class TimedStub(StripeStub):
        def __init__(self) -> None:
            super().__init__()
            self.created_at: list[float] = []

        def _answer(self, method: str, path: str, headers, body: str):
            answer = super()._answer(method, path, headers, body)
            if method == "POST" and path == "/v1/payment_intents" and answer[0] == 200:
                self.created_at.append(time.monotonic())
            return answer

    return TimedStub().start()


def peak_per_second(times: list[float]) -> int:
    """Most events in any one-second window."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def pay_all(
    orders: list[tuple[Browser, int]], *, provider: str, stub=None, gate_size: int = 64
) -> dict:
    """Each buyer starts payment for its order, then completes it (demo confirm or webhook)."""
    gate = asyncio.Semaphore(gate_size)
    statuses: dict[str, int] = {}
    paid = 0

    def count(key: str) -> None:
        statuses[key] = statuses.get(key, 0) + 1

    async def one(buyer: Browser, order_id: int) -> None:
        nonlocal paid
        async with gate:
            status, _, _ = await buyer.request("POST", f"/orders/{order_id}/payment")
            count(f"payment_{status}")
            if status != 200:
                return
            if provider == "demo":
                status, body, _ = await buyer.request("POST", f"/payments/demo/{order_id}/confirm")
            else:
                status, body = await _stripe_succeeds(buyer, order_id, stub)
            count(f"confirm_{status}")
            if status == 200 and body.get("status", "paid") == "paid":
                paid += 1

    await asyncio.gather(*(one(b, o) for b, o in orders))
    result = {"paid": paid, "payment_statuses": statuses}
    if stub is not None:
        result["intents_created"] = stub.created_intents()
        result["intents_peak_per_s"] = peak_per_second(stub.created_at)
    return result


async def _stripe_succeeds(buyer: Browser, order_id: int, stub) -> tuple[int, dict]:
    """What Stripe does after the buyer pays: the intent succeeds and a signed webhook arrives."""
    from tests.orders.stripe_stub import event, signed

    intent_id = next(
        (
            i["id"]
            for i in list(stub.intents.values())
            if str((i.get("metadata") or {}).get("order_id")) == str(order_id)
        ),
        None,
    )
    if intent_id is None:
        return 0, {"error": "no intent for the order"}
    intent = stub.set_status(intent_id, "succeeded")
    body, headers = signed(event("payment_intent.succeeded", intent), WEBHOOK_SECRET)
    url = buyer.base_url + "/webhooks/stripe"
    async with buyer.http.post(url, data=body, headers=headers) as response:
        data = await response.json(content_type=None)
        return response.status, {"status": "paid" if response.status == 200 else "?", **data}
