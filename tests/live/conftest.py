"""Live fixtures: a host with a live session, a product to pin, buyers, Socket.IO test clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

ADDRESS = {"name": "张伟", "phone": "13800000000", "region": "新疆 尉犁县", "detail": "团结路 1 号"}


@dataclass
class LiveSetup:
    host: Any
    host_api: Any
    session_id: int
    product: dict
    variant_id: int

    def pin(self, live_price: int = 6800, per_buyer_limit: int | None = None, **extra):
        body = {
            "product_id": self.product["id"],
            "live_prices": {str(self.variant_id): live_price},
            "per_buyer_limit": per_buyer_limit,
            **extra,
        }
        response = self.host_api.post(f"/live-sessions/{self.session_id}/pins", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def host(factory):
    return factory.user("host", name="王副县长")


@pytest.fixture
def scheduled(factory, login_as, host) -> LiveSetup:
    """A scheduled session by `host`, a product with one variant (¥88.00, 10 in stock)."""
    host_api = login_as(host)
    product = factory.product(variants=[{"name": "2 kg 后腿", "price": 8800, "stock": 10}])
    response = host_api.post(
        "/live-sessions", {"title": "尉犁羊肉专场", "stream_url": "https://example.com/a.m3u8"}
    )
    assert response.status_code == 201, response.get_json()
    return LiveSetup(host, host_api, response.get_json()["id"], product, product["variant_ids"][0])


@pytest.fixture
def live(scheduled) -> LiveSetup:
    """The same session, started."""
    response = scheduled.host_api.post(f"/live-sessions/{scheduled.session_id}/start")
    assert response.status_code == 200, response.get_json()
    return scheduled


def checkout(client, session_id: int, variant_id: int, quantity: int = 1, key: str = "tap-1"):
    return client.post(
        f"/live-sessions/{session_id}/checkout",
        {"variant_id": variant_id, "quantity": quantity, "address": ADDRESS},
        headers={"Idempotency-Key": key},
    )


@pytest.fixture
def socket_client(app):
    """socket_client(api_client=None) → a /live Socket.IO test client sharing that login."""
    from shop.extensions import socketio

    clients = []

    def _make(api_client=None):
        flask_client = api_client.client if api_client is not None else app.test_client()
        sio = socketio.test_client(app, namespace="/live", flask_test_client=flask_client)
        assert sio.is_connected("/live")
        clients.append(sio)
        return sio

    yield _make
    for sio in clients:
        if sio.is_connected("/live"):
            sio.disconnect(namespace="/live")


def events(sio, name: str) -> list[dict]:
    """The payloads of every `name` event this client has received since the last call."""
    received = [e for e in sio.get_received("/live") if e["name"] == name]
    # the test client hands a `message` event's data over bare, other events as a list
    return [e["args"][0] if isinstance(e["args"], list) else e["args"] for e in received]


@pytest.fixture
def live_browser(new_api):
    """live_browser(session_id, api_client=None) → that browser (a new one unless given) after
    it opened the live page, so it holds the page's signed viewer cookie."""

    def _open(session_id: int, api_client=None):
        browser = api_client if api_client is not None else new_api()
        assert browser.client.get(f"/live/{session_id}").status_code == 200
        assert browser.client.get_cookie("farmlive_viewer") is not None
        return browser

    return _open
