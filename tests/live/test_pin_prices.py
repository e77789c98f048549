"""Live prices: above 0, never above the regular price, never below the cooperative's floor.

The product of the `live` fixture sells at ¥88.00 (8800 fen); its cooperative's floor is the
default 50 %, so the lowest live price is 4400.
"""

from __future__ import annotations

import pytest


def _pin(live, price, **extra):
    body = {"product_id": live.product["id"], "live_prices": {str(live.variant_id): price}}
    return live.host_api.post(f"/live-sessions/{live.session_id}/pins", {**body, **extra})


def _pinned(live):
    return live.host_api.get(f"/live-sessions/{live.session_id}").get_json()["pinned"]


def _pin_count(app) -> int:
    from sqlalchemy import func, select

    from live.models import Pin, PinPrice
    from shop.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count(Pin.id))) + db.session.scalar(
            select(func.count(PinPrice.id))
        )


@pytest.mark.parametrize(
    ("price", "why"),
    [
        (0, "more than 0"),
        (-1, "more than 0"),
        (8801, "at most 8800"),
        (4399, "at least 4400"),
        ("6800", "whole number"),
        (68.5, "whole number"),
        (True, "whole number"),
    ],
)
def test_a_refused_live_price_is_422_naming_the_variant_and_writes_nothing(live, app, price, why):
    # given a live session with nothing pinned
    before = _pin_count(app)

    # when the host pins the product at a price outside [floor, regular]
    response = _pin(live, price)

    # then the refusal names the variant, and no pin exists
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_pin"
    assert list(error["fields"]) == ["live_prices"]
    messages = error["fields"]["live_prices"][str(live.variant_id)]
    assert any(why in message for message in messages), messages
    assert _pinned(live) is None
    assert _pin_count(app) == before


@pytest.mark.parametrize("price", [4400, 6800, 8800])
def test_a_live_price_from_the_floor_to_the_regular_price_is_pinned(live, price):
    # when the host pins at the floor, between, or at the regular price
    response = _pin(live, price)

    # then it is pinned at exactly that price
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["variants"][0]["live_price"] == price
    assert _pinned(live)["variants"][0]["live_price"] == price


def test_the_floor_rounds_up(factory, login_as, live):
    # given a variant at ¥0.99 (99 fen): 50 % is 49.5 fen, so the floor is 50
    product = factory.product(
        live.product["cooperative_id"], variants=[{"name": "试吃装", "price": 99, "stock": 5}]
    )
    path = f"/live-sessions/{live.session_id}/pins"
    variant = str(product["variant_ids"][0])

    # when the host pins at 49, then at 50
    low = live.host_api.post(path, {"product_id": product["id"], "live_prices": {variant: 49}})
    ok = live.host_api.post(path, {"product_id": product["id"], "live_prices": {variant: 50}})

    # then 49 is refused and 50 is the floor itself
    assert low.status_code == 422
    assert "at least 50" in low.get_json()["error"]["fields"]["live_prices"][variant][0]
    assert ok.status_code == 201, ok.get_json()


def test_a_refused_pin_leaves_the_current_pin_in_place(live):
    # given a pin at ¥68.00
    first = live.pin(live_price=6800)

    # when the host tries to replace it at a price above the regular one
    refused = _pin(live, 9900)

    # then the refusal changes nothing: the first pin is still current
    assert refused.status_code == 422
    assert _pinned(live)["id"] == first["id"]
    assert _pinned(live)["variants"][0]["live_price"] == 6800


def test_every_bad_variant_is_named_at_once(factory, live):
    # given a product with two variants
    product = factory.product(
        live.product["cooperative_id"],
        variants=[
            {"name": "2 kg", "price": 8800, "stock": 5},
            {"name": "5 kg", "price": 20000, "stock": 5},
        ],
    )
    small, large = (str(v) for v in product["variant_ids"])
    foreign = str(factory.product()["variant_ids"][0])

    # when both live prices and a foreign variant are wrong
    response = live.host_api.post(
        f"/live-sessions/{live.session_id}/pins",
        {"product_id": product["id"], "live_prices": {small: 0, large: 30000, foreign: 100}},
    )

    # then each one is named
    assert response.status_code == 422
    named = response.get_json()["error"]["fields"]["live_prices"]
    assert set(named) == {small, large, foreign}
    assert "belong" in named[foreign][0]


def test_a_variant_left_out_sells_at_its_regular_price_which_must_be_above_0(factory, live):
    # given a product whose second variant is a free sample (regular price 0)
    product = factory.product(
        live.product["cooperative_id"],
        variants=[
            {"name": "2 kg", "price": 8800, "stock": 5},
            {"name": "赠品", "price": 0, "stock": 5},
        ],
    )
    paid, free = (str(v) for v in product["variant_ids"])

    # when the host pins it giving a live price only for the paid variant
    response = live.host_api.post(
        f"/live-sessions/{live.session_id}/pins",
        {"product_id": product["id"], "live_prices": {paid: 6800}},
    )

    # then the free variant is named: nothing sells live at 0
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]["live_prices"]) == [free]


def test_raising_and_lowering_the_floor_moves_the_lowest_live_price(live, factory, login_as):
    # given the cooperative's own member
    coop_id = live.product["cooperative_id"]
    member = login_as(factory.user("coop", cooperative_id=coop_id))

    # when the member raises the floor to 80 %
    raised = member.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": 80})

    # then ¥68.00 (77 %) is refused and ¥70.40 (80 %) is pinned
    assert raised.status_code == 200, raised.get_json()
    assert raised.get_json()["live_price_floor_percent"] == 80
    refused = _pin(live, 6800)
    assert refused.status_code == 422
    assert (
        "at least 7040"
        in refused.get_json()["error"]["fields"]["live_prices"][str(live.variant_id)][0]
    )
    assert _pin(live, 7040).status_code == 201

    # when an admin lowers it to 0 %
    admin = login_as(factory.user("admin"))
    lowered = admin.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": 0})

    # then any price above 0 goes, but still not 0
    assert lowered.status_code == 200 and lowered.get_json()["live_price_floor_percent"] == 0
    assert _pin(live, 1).status_code == 201
    assert _pin(live, 0).status_code == 422


def test_a_floor_of_100_allows_only_the_regular_price(live, factory, login_as):
    coop_id = live.product["cooperative_id"]
    admin = login_as(factory.user("admin"))
    assert (
        admin.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": 100}).status_code
        == 200
    )

    assert _pin(live, 8799).status_code == 422
    assert _pin(live, 8800).status_code == 201


def test_the_service_refuses_the_same_way(app, live):
    """pin_product called directly (as the socket handlers and scripts do) checks prices too."""
    from live import services
    from live.errors import InvalidPin
    from shop.extensions import db
    from shop.models import User

    with app.test_request_context():
        host = db.session.get(User, live.host.id)
        # given a live session; when a price below the floor is pinned through the service
        with pytest.raises(InvalidPin) as refused:
            services.pin_product(
                host,
                live.session_id,
                product_id=live.product["id"],
                live_prices={live.variant_id: 100},
            )
        # then it names the variant, and a good price still pins
        assert str(live.variant_id) in refused.value.fields["live_prices"]
        pin = services.pin_product(
            host,
            live.session_id,
            product_id=live.product["id"],
            live_prices={live.variant_id: 4400},
        )
        assert pin.live_price(live.variant_id) == 4400


def test_live_price_floor_is_the_share_of_the_regular_price_rounded_up():
    from live.services import live_price_floor

    assert live_price_floor(8800, 50) == 4400
    assert live_price_floor(99, 50) == 50
    assert live_price_floor(101, 33) == 34
    assert live_price_floor(8800, 0) == 0
    assert live_price_floor(8800, 100) == 8800


def test_the_console_tells_the_host_each_variants_lowest_live_price(live, factory, login_as):
    # given a cooperative floor of 80 %
    coop_id = live.product["cooperative_id"]
    admin = login_as(factory.user("admin"))
    admin.patch(f"/cooperatives/{coop_id}", {"live_price_floor_percent": 80})

    # when the host opens the console
    html = live.host_api.client.get(f"/host/live/{live.session_id}").get_data(as_text=True)

    # then the page's data carries the bounds its script checks before pinning
    assert '"min_live_price": 7040' in html
    assert "price_below_floor" in html and "price_refused" in html
