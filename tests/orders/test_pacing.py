"""Intent creations are paced: each caller gets its own slot, process-wide or shared via Redis."""

from __future__ import annotations

import uuid

import pytest

from orders.errors import PaymentRateLimited
from orders.payments import MAX_PACING_WAIT, Pacer


def test_callers_get_successive_slots():
    pacer = Pacer(rate=10)
    delays = [pacer.reserve() for _ in range(5)]
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0, abs=0.05)
    assert delays[4] == pytest.approx(0.4, abs=0.05)


def test_nobody_waits_beyond_the_bound():
    pacer = Pacer(rate=1)
    for _ in range(int(MAX_PACING_WAIT) + 1):
        pacer.reserve()
    with pytest.raises(PaymentRateLimited):
        pacer.wait_turn()


def test_processes_share_the_pace_through_redis(redis_url):
    key = f"farmlive:test-orders:pace:{uuid.uuid4().hex}"
    one, two = (
        Pacer(rate=10, redis_url=redis_url, key=key),
        Pacer(rate=10, redis_url=redis_url, key=key),
    )
    first, second, third = one.reserve(), two.reserve(), one.reserve()
    assert first == pytest.approx(0, abs=0.05)
    assert second == pytest.approx(0.1, abs=0.05)
    assert third == pytest.approx(0.2, abs=0.05)
