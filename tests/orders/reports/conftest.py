from __future__ import annotations

import pytest

from tests.orders.reports.scenario import build


@pytest.fixture
def world(app, factory):
    return build(app, factory)
