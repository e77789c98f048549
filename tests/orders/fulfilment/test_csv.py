"""Shipping many from an uploaded CSV (all lines or none) and the courier export."""

from __future__ import annotations

import csv
import io

SHIPPED_HEADER = "order number,carrier,tracking number\n"


def _upload(api, text: str | bytes, **query):
    data = text.encode("utf-8") if isinstance(text, str) else text
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return api.request(
        "POST",
        "/fulfilment/shipments/import" + suffix,
        data={"file": (io.BytesIO(data), "ship.csv")},
        content_type="multipart/form-data",
    )


def test_good_file_ships_every_line(scene, login_as):
    first = scene.paid_order([(scene.leg, 1)])
    second = scene.paid_order([(scene.lamb, 1), (scene.pear, 1)])
    text = (
        "\ufeff"
        + SHIPPED_HEADER
        + f"{first['number']},顺丰速运,SF001\n{second['number'].lower()},中通快递,ZT002\n"
    )

    response = _upload(login_as(scene.member_a), text)

    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["items"]) == 2
    assert scene.shipment(first["shipments"][scene.coop_a]) == {
        "status": "shipped",
        "carrier": "顺丰速运",
        "tracking": "SF001",
    }
    assert scene.shipment(second["shipments"][scene.coop_a])["tracking"] == "ZT002"
    assert scene.order_status(first["id"]) == "shipped"
    assert scene.order_status(second["id"]) == "paid"  # the pears are not shipped yet


def test_raw_csv_body_without_bom_is_accepted(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])

    response = login_as(scene.member_a).request(
        "POST",
        "/fulfilment/shipments/import",
        data=(SHIPPED_HEADER + f"{order['number']},EMS,E1\n").encode(),
        content_type="text/csv",
    )

    assert response.status_code == 200
    assert scene.shipment(order["shipments"][scene.coop_a])["status"] == "shipped"


def test_bad_lines_are_reported_by_line_and_nothing_is_applied(scene, login_as):
    good = scene.paid_order([(scene.leg, 1)])
    theirs = scene.paid_order([(scene.pear, 1)])
    done = scene.paid_order([(scene.lamb, 1)])
    api = login_as(scene.member_a)
    api.post(
        f"/fulfilment/shipments/{done['shipments'][scene.coop_a]}/ship",
        {"carrier": "EMS", "tracking_number": "E0"},
    )
    text = (
        SHIPPED_HEADER
        + f"{good['number']},顺丰速运,SF001\n"  # line 2: fine
        + "FL000000NOSUCH,顺丰速运,SF002\n"  # line 3: unknown
        + f"{theirs['number']},顺丰速运,SF003\n"  # line 4: another cooperative's
        + f"{done['number']},顺丰速运,SF004\n"  # line 5: already shipped
        + "\n"  # line 6: blank, skipped
        + f"{good['number']},,\n"  # line 7: missing carrier and tracking, and a duplicate
    )

    response = _upload(api, text)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_csv"
    lines = error["fields"]["file"]
    assert sorted(lines, key=int) == ["3", "4", "5", "7"]
    assert "FL000000NOSUCH" in lines["3"][0]
    assert any("carrier" in m for m in lines["7"]) and any("tracking" in m for m in lines["7"])
    assert any("line 2" in m for m in lines["7"])
    assert scene.shipment(good["shipments"][scene.coop_a])["status"] == "pending"
    assert scene.shipment(done["shipments"][scene.coop_a])["tracking"] == "E0"


def test_duplicate_order_numbers_reject_the_file(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    text = SHIPPED_HEADER + f"{order['number']},顺丰速运,SF1\n{order['number']},中通快递,ZT2\n"

    response = _upload(login_as(scene.member_a), text)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]["file"]) == ["3"]
    assert scene.shipment(order["shipments"][scene.coop_a])["status"] == "pending"


def test_header_and_encoding_problems(scene, login_as):
    api = login_as(scene.member_a)

    no_header = _upload(api, "FL1,顺丰速运,SF1\n")
    not_utf8 = _upload(api, (SHIPPED_HEADER + "FL1,顺丰速运,SF1\n").encode("gb18030"))
    empty = _upload(api, "")

    assert no_header.status_code == 422
    assert list(no_header.get_json()["error"]["fields"]["file"]) == ["1"]
    assert not_utf8.status_code == 422
    assert list(not_utf8.get_json()["error"]["fields"]["file"]) == ["2"]
    assert empty.status_code == 422 and "file" in empty.get_json()["error"]["fields"]


def test_admin_must_say_which_cooperative_the_file_is_for(scene, login_as):
    order = scene.paid_order([(scene.pear, 1)])
    text = SHIPPED_HEADER + f"{order['number']},EMS,E9\n"
    api = login_as(scene.admin)

    assert _upload(api, text).status_code == 422
    assert _upload(api, text, cooperative_id=scene.coop_b).status_code == 200
    assert scene.shipment(order["shipments"][scene.coop_b])["status"] == "shipped"


def test_export_lists_shipments_to_pack_for_the_courier(scene, login_as):
    order = scene.paid_order([(scene.leg, 2), (scene.lamb, 1), (scene.pear, 3)])
    shipped = scene.paid_order([(scene.leg, 1)])
    api = login_as(scene.member_a)
    api.post(
        f"/fulfilment/shipments/{shipped['shipments'][scene.coop_a]}/ship",
        {"carrier": "EMS", "tracking_number": "E1"},
    )

    response = api.get("/fulfilment/shipments/export")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["order number"] for row in rows] == [order["number"]]
    row = rows[0]
    assert (row["buyer name"], row["phone"], row["region"]) == (
        "王芳",
        "13800138000",
        "新疆 库尔勒市",
    )
    assert row["address"] == "人民路 8 号" and row["units"] == "3"
    assert "2 kg leg x2" in row["items"] and "香梨" not in row["items"]


def test_exported_file_comes_back_as_an_import(scene, login_as):
    order = scene.paid_order([(scene.leg, 1)])
    api = login_as(scene.member_a)
    rows = list(
        csv.reader(io.StringIO(api.get("/fulfilment/shipments/export").data.decode("utf-8-sig")))
    )
    rows[1][-2:] = ["顺丰速运", "SF777"]  # the courier filled in carrier and tracking number
    out = io.StringIO()
    csv.writer(out).writerows(rows)

    assert _upload(api, "\ufeff" + out.getvalue()).status_code == 200
    assert scene.shipment(order["shipments"][scene.coop_a])["tracking"] == "SF777"
