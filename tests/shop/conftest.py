"""Shop fixtures: images for uploads, and a coop member with a product of their own."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 120, 40, 255)[: len(mode)]).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def coop_setup(factory, login_as):
    """A cooperative, its member logged in, and one of its products."""
    coop_id = factory.cooperative("尉犁羊肉合作社")
    member = factory.user("coop", cooperative_id=coop_id)
    product = factory.product(coop_id, variants=[{"name": "2 kg leg", "price": 8800, "stock": 5}])
    return {"coop_id": coop_id, "member": member, "client": login_as(member), "product": product}


class Browser:
    """A test client that fills in forms the way a browser does: session cookie and CSRF field."""

    def __init__(self, client) -> None:
        self.client = client

    def token(self) -> str:
        html = self.client.get("/login").get_data(as_text=True)
        return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict | None = None, **kw):
        return self.client.post(path, data={"csrf_token": self.token(), **(data or {})}, **kw)

    def login(self, user) -> Browser:
        response = self.post("/login", {"email": user.email, "password": user.password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return self


@pytest.fixture
def browser_as(app):
    """browser_as(user or None) → a Browser, logged in through the login page if given a user."""

    def _make(user=None) -> Browser:
        page = Browser(app.test_client())
        return page.login(user) if user is not None else page

    return _make
