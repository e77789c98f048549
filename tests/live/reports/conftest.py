from __future__ import annotations

import pytest

from tests.orders.reports.scenario import at, build


@pytest.fixture
def world(app, factory):
    """The sales world of tests/orders/reports/scenario.py, plus S1's viewers."""
    built = build(app, factory)
    from live.models import LiveSession, ViewerSample, ViewerVisit
    from shop.extensions import db

    with app.app_context():
        for n in range(4):
            db.session.add(ViewerVisit(session_id=built.s1, viewer_key=f"anon-{n}"))
        db.session.add(ViewerVisit(session_id=built.s2, viewer_key="anon-x"))
        for minute, viewers in [
            ("2026-11-10T15:59:00", 3),
            ("2026-11-10T16:00:00", 1),
            ("2026-11-11T02:00:00", 2),
        ]:
            db.session.add(ViewerSample(session_id=built.s1, minute=at(minute), viewers=viewers))
        db.session.get(LiveSession, built.s1).peak_viewers = 5
        db.session.commit()
    return built
