"""GET /api/v1/reports/sales: the hand-worked figures of scenario.py, per role and grouping."""

from __future__ import annotations

import csv
import io


def figures(orders, units, gross, refunds, buyers) -> dict:
    return {
        "orders": orders,
        "units": units,
        "gross": gross,
        "refunds": refunds,
        "net": gross - refunds,
        "buyers": buyers,
    }


def row(key, label, *numbers) -> dict:
    return {"key": key, "label": label, **figures(*numbers)}


# Everything: O1..O4 paid (O5 expired counts nowhere), O3's 1200 refunded on the 12th.
ALL = figures(4, 2 + 4 + 1 + 1, 16000 + 13300 + 1200 + 8800, 1200, 3)


def test_admin_by_day_splits_at_shanghai_midnight_and_counts_refund_on_its_day(world, login_as):
    admin = login_as(world.admin)
    body = admin.get("/reports/sales?group_by=day").get_json()
    assert body["rows"] == [
        # O1 at 15:59:59Z is 23:59:59 in Shanghai on the 10th.
        row("2026-11-10", "2026-11-10", 1, 2, 16000, 0, 1),
        # O2 at 16:00:00Z is already the 11th; with O3 and O4: b2 twice, b3 once.
        row("2026-11-11", "2026-11-11", 3, 4 + 1 + 1, 13300 + 1200 + 8800, 0, 2),
        # O3's refund, made on the 12th, counts there and only there.
        row("2026-11-12", "2026-11-12", 0, 0, 0, 1200, 0),
    ]
    assert body["totals"] == ALL


def test_admin_by_product_cooperative_and_session(world, login_as):
    admin = login_as(world.admin)
    by_product = admin.get("/reports/sales?group_by=product").get_json()
    assert by_product["rows"] == [
        row(world.p1, "罗布羊肉", 3, 2 + 1 + 1, 16000 + 8800 + 8800, 0, 3),
        row(world.p2, "Carrots", 2, 3 + 1, 4500 + 1200, 1200, 1),
    ]
    assert by_product["totals"] == ALL  # distinct orders and buyers, not the sum of rows

    by_coop = admin.get("/reports/sales?group_by=cooperative").get_json()
    assert by_coop["rows"] == [
        row(world.coop_a_id, "尉犁羊肉合作社", 3, 4, 33600, 0, 3),
        row(world.coop_b_id, "=Veg Co-op", 2, 4, 5700, 1200, 1),
    ]
    assert by_coop["totals"] == ALL

    by_session = admin.get("/reports/sales?group_by=session").get_json()
    assert by_session["rows"] == [
        row(world.s1, "羊肉专场 Mutton night", 2, 3, 16000 + 1200, 1200, 2),
        row(world.s2, "Second stream", 1, 1, 8800, 0, 1),
        row(None, "Not in a live session", 1, 4, 13300, 0, 1),  # the cart order O2
    ]
    assert by_session["totals"] == ALL


def test_date_range_is_inclusive_local_days(world, login_as):
    admin = login_as(world.admin)
    one_day = admin.get("/reports/sales?group_by=day&from=2026-11-11&to=2026-11-11").get_json()
    assert one_day["rows"] == [row("2026-11-11", "2026-11-11", 3, 6, 23300, 0, 2)]
    assert one_day["totals"] == figures(3, 6, 23300, 0, 2)

    # By product over the 12th only: nothing sold, P2's refund made that day.
    refund_day = admin.get("/reports/sales?group_by=product&from=2026-11-12&to=2026-11-12")
    assert refund_day.get_json()["rows"] == [row(world.p2, "Carrots", 0, 0, 0, 1200, 0)]

    nothing = admin.get("/reports/sales?from=2026-11-01&to=2026-11-09").get_json()
    assert nothing == {"rows": [], "totals": figures(0, 0, 0, 0, 0)}


def test_cooperative_sees_only_its_own_items(world, login_as):
    coop_a = login_as(world.coop_a).get("/reports/sales?group_by=day").get_json()
    assert coop_a["rows"] == [
        row("2026-11-10", "2026-11-10", 1, 2, 16000, 0, 1),
        # O2's mutton line (8800) but not its carrots, plus O4.
        row("2026-11-11", "2026-11-11", 2, 2, 8800 + 8800, 0, 2),
    ]
    assert coop_a["totals"] == figures(3, 4, 33600, 0, 3)

    coop_b = login_as(world.coop_b)
    by_day = coop_b.get("/reports/sales?group_by=day").get_json()
    assert by_day["rows"] == [
        row("2026-11-11", "2026-11-11", 2, 3 + 1, 4500 + 1200, 0, 1),
        row("2026-11-12", "2026-11-12", 0, 0, 0, 1200, 0),
    ]
    assert by_day["totals"] == figures(2, 4, 5700, 1200, 1)
    by_product = coop_b.get("/reports/sales?group_by=product").get_json()
    assert [r["key"] for r in by_product["rows"]] == [world.p2]


def test_host_sees_only_orders_of_own_sessions(world, login_as):
    host1 = login_as(world.host1).get("/reports/sales?group_by=day").get_json()
    assert host1["rows"] == [
        row("2026-11-10", "2026-11-10", 1, 2, 16000, 0, 1),
        row("2026-11-11", "2026-11-11", 1, 1, 1200, 0, 1),
        row("2026-11-12", "2026-11-12", 0, 0, 0, 1200, 0),
    ]
    assert host1["totals"] == figures(2, 3, 17200, 1200, 2)

    host2 = login_as(world.host2).get("/reports/sales?group_by=session").get_json()
    assert host2["rows"] == [row(world.s2, "Second stream", 1, 1, 8800, 0, 1)]


def test_buyers_and_strangers_are_refused(world, login_as, new_api):
    assert login_as(world.buyer).get("/reports/sales").status_code == 403
    response = new_api().get("/reports/sales")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_bad_query_is_422_naming_the_field(world, login_as):
    admin = login_as(world.admin)
    cases = {
        "group_by=week": "group_by",
        "from=2026-13-01": "from",
        "to=yesterday": "to",
        "from=0001-01-01": "from",
        "to=9999-12-31": "to",
        "from=2026-11-12&to=2026-11-11": "to",
        "format=xlsx": "format",
    }
    for query, field in cases.items():
        response = admin.get(f"/reports/sales?{query}")
        assert response.status_code == 422, query
        assert field in response.get_json()["error"]["fields"], query


def test_csv_has_bom_one_column_per_field_and_equals_json(world, login_as):
    admin = login_as(world.admin)
    for group_by in ("day", "product", "cooperative", "session"):
        query = f"/reports/sales?group_by={group_by}&from=2026-11-01&to=2026-11-30"
        as_json = admin.get(query).get_json()
        response = admin.get(query + "&format=csv")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        raw = response.get_data()
        assert raw.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        header, *body, total = lines
        assert header == ["key", "label", "orders", "units", "gross", "refunds", "net", "buyers"]
        assert len(body) == len(as_json["rows"])
        for cells, expected in zip(body, as_json["rows"], strict=True):
            assert cells[0] == ("" if expected["key"] is None else str(expected["key"]))
            label = expected["label"]
            assert cells[1] == ("'" + label if label.startswith("=") else label)
            assert [int(c) for c in cells[2:]] == [expected[k] for k in header[2:]]
        assert total[:2] == ["total", "Total"]
        assert [int(c) for c in total[2:]] == [as_json["totals"][k] for k in header[2:]]
