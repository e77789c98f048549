"""The pick list adds up what to take from the cold store, per variant, over unshipped shipments."""

from __future__ import annotations

from tests.orders.fulfilment.conftest import make_live_session


def _quantities(api, query: str = "") -> dict[int, int]:
    response = api.get("/fulfilment/pick-list" + query)
    assert response.status_code == 200
    return {line["variant_id"]: line["quantity"] for line in response.get_json()["items"]}


def test_sums_pending_and_packed_but_not_shipped(scene, login_as, factory):
    other_buyer = factory.user("buyer")
    first = scene.paid_order([(scene.leg, 2), (scene.lamb, 1), (scene.pear, 4)])
    second = scene.paid_order([(scene.leg, 3)], buyer=other_buyer)
    shipped = scene.paid_order([(scene.leg, 5), (scene.lamb, 7)])
    scene.paid_order([(scene.pear, 1)])
    api = login_as(scene.member_a)
    api.post(f"/fulfilment/shipments/{second['shipments'][scene.coop_a]}/pack")
    api.post(
        f"/fulfilment/shipments/{shipped['shipments'][scene.coop_a]}/ship",
        {"carrier": "EMS", "tracking_number": "E1"},
    )

    assert _quantities(api) == {scene.leg: 5, scene.lamb: 1}
    assert _quantities(login_as(scene.member_b)) == {scene.pear: 5}
    assert _quantities(login_as(scene.admin)) == {scene.leg: 5, scene.lamb: 1, scene.pear: 5}
    assert first["id"]


def test_lines_name_product_and_variant(scene, login_as):
    scene.paid_order([(scene.lamb, 2)])

    items = login_as(scene.member_a).get("/fulfilment/pick-list").get_json()["items"]

    assert items == [
        {
            "variant_id": scene.lamb,
            "product_name": "羊肉",
            "variant_name": "whole lamb",
            "quantity": 2,
        }
    ]


def test_unpaid_orders_are_not_picked_and_live_session_filters(scene, login_as):
    from orders.services import Line, place_order
    from shop.extensions import db
    from shop.models import User

    session_id = make_live_session(scene.app, scene.host.id)
    scene.paid_order([(scene.leg, 2)], live_session_id=session_id)
    scene.paid_order([(scene.leg, 10)])
    with scene.app.app_context():
        place_order(db.session.get(User, scene.buyer.id), [Line(scene.lamb, 1)], {"name": "x"})
    api = login_as(scene.member_a)

    assert _quantities(api) == {scene.leg: 12}
    assert _quantities(api, f"?live_session_id={session_id}") == {scene.leg: 2}
