"""Demo data: two real-looking cooperatives, their products, demo users, a scheduled stream."""

from __future__ import annotations

from collections.abc import Iterator

DEMO_PASSWORD = "farmlive-demo"
DEMO_USERS = [
    {"role": "admin", "email": "admin@farmlive.test", "name": "县电商中心"},
    {"role": "host", "email": "host@farmlive.test", "name": "王副县长"},
    {"role": "coop", "email": "coop@farmlive.test", "name": "尉犁羊肉合作社"},
    {"role": "buyer", "email": "buyer@farmlive.test", "name": "张女士"},
]


def seed() -> Iterator[str]:
    yield "nothing to seed yet"
