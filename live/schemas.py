"""marshmallow schemas for live sessions, pins, instant checkout and messages."""

from __future__ import annotations

from datetime import UTC
from urllib.parse import urlparse

from flask import current_app, url_for
from marshmallow import ValidationError, fields, pre_dump, validate

from orders.schemas import AddressSchema, OrderSchema  # noqa: F401 - the order shape of API.md
from shop.schemas import ID, BaseSchema


def stream_kind(url: str | None) -> str | None:
    """How the page plays a stream: HLS through hls.js, a plain video file, or an embed."""
    if not url:
        return None
    path = urlparse(url).path.lower()
    if path.endswith(".m3u8"):
        return "hls"
    if path.endswith((".mp4", ".webm", ".ogg", ".ogv", ".mov", ".m4v")):
        return "video"
    return "embed"


class StreamUrlField(fields.Str):
    """An http(s) URL or a site-relative path (a local video)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = (super()._deserialize(value, attr, data, **kwargs) or "").strip()
        if not text:
            return None
        parsed = urlparse(text)
        if text.startswith("/") and not text.startswith("//"):
            return text
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError("An http(s) URL or a path on this site.")
        return text

    def _validate(self, value) -> None:
        """A blank URL became None (no stream yet): there is no length left to check."""
        if value is not None:
            super()._validate(value)


class ProductBriefSchema(BaseSchema):
    id = fields.Int()
    name = fields.Str()
    description = fields.Str()
    cooperative_id = fields.Int()
    photo_url = fields.Method("_photo_url")

    def _photo_url(self, product) -> str | None:
        return url_for("shop_pages.photo", filename=product.photo) if product.photo else None


class PinSchema(BaseSchema):
    """The `pin` object of API.md: every variant with its regular and live price and stock."""

    id = fields.Int()
    session_id = fields.Int()
    product = fields.Function(lambda pin: ProductBriefSchema().dump(pin.product))
    variants = fields.Method("_variants")
    per_buyer_limit = fields.Int(allow_none=True)
    created_at = fields.DateTime()

    def _variants(self, pin) -> list[dict]:
        prices = {p.variant_id: p.live_price for p in pin.prices}
        return [
            {
                "id": v.id,
                "name": v.name,
                "price": v.price,
                "live_price": prices[v.id],
                "stock": v.stock,
            }
            for v in pin.product.variants
            if v.id in prices
        ]


class SessionCreateSchema(BaseSchema):
    title = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    description = fields.Str(load_default="", validate=validate.Length(max=5000))
    stream_url = StreamUrlField(
        load_default=None, allow_none=True, validate=validate.Length(max=1000)
    )
    scheduled_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)


class SessionSchema(BaseSchema):
    id = fields.Int()
    title = fields.Str()
    description = fields.Str()
    status = fields.Str()
    host_id = fields.Int()
    host_name = fields.Function(lambda s: s.host.name if s.host else "")
    stream_url = fields.Str(allow_none=True)
    stream_kind = fields.Function(lambda s: stream_kind(s.stream_url))
    cover_url = fields.Function(
        lambda s: url_for("shop_pages.photo", filename=s.cover) if s.cover else None
    )
    scheduled_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    peak_viewers = fields.Int()
    pinned = fields.Method("_pinned")
    viewers = fields.Method("_viewers")
    lineup = fields.Function(
        lambda s: [ProductBriefSchema().dump(item.product) for item in s.lineup]
    )
    url = fields.Function(lambda s: url_for("live_pages.watch", session_id=s.id))

    def _pinned(self, live) -> dict | None:
        from live.services import current_pin, pin_data

        return pin_data(current_pin(live.id))

    def _viewers(self, live) -> int:
        from live.viewers import count

        return count(live.id)


class SessionListSchema(BaseSchema):
    items = fields.List(fields.Nested(SessionSchema))


class SessionQuerySchema(BaseSchema):
    status = fields.Str(validate=validate.OneOf(["scheduled", "live", "ended"]))


class PinCreateSchema(BaseSchema):
    product_id = fields.Int(required=True, strict=True, validate=ID)
    # The service checks each price (an integer above 0, at most the regular price, at least
    # the cooperative's floor), so every refusal names its variant the same way.
    live_prices = fields.Dict(
        keys=fields.Str(),
        values=fields.Raw(metadata={"type": "integer", "minimum": 1}),
        load_default=None,
        metadata={"description": "{variant_id: live price in minor units}"},
    )
    per_buyer_limit = fields.Int(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=10_000)
    )


class CheckoutDefaultsSchema(BaseSchema):
    address = fields.Nested(AddressSchema, allow_none=True)


class CheckoutSchema(BaseSchema):
    variant_id = fields.Int(required=True, strict=True, validate=ID)
    quantity = fields.Int(strict=True, load_default=1, validate=validate.Range(min=1, max=99))
    address = fields.Nested(AddressSchema, required=True)


class MessageSchema(BaseSchema):
    id = fields.Int()
    session_id = fields.Int()
    user_name = fields.Function(lambda m: m.user.name if m.user else "")
    body = fields.Str()
    kind = fields.Str()
    created_at = fields.DateTime()
    answered = fields.Bool()
    votes = fields.Int()


class MessageListSchema(BaseSchema):
    items = fields.List(fields.Nested(MessageSchema))


class MessageQuerySchema(BaseSchema):
    kind = fields.Str(validate=validate.OneOf(["chat", "question"]))
    order = fields.Str(validate=validate.OneOf(["newest", "votes"]))


class MessageCreateSchema(BaseSchema):
    body = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    kind = fields.Str(load_default="chat", validate=validate.OneOf(["chat", "question"]))


class MessageUpdateSchema(BaseSchema):
    hidden = fields.Bool()
    answered = fields.Bool()


# --- payloads of the /live socket events ------------------------------------------------------


class LeaveEventSchema(BaseSchema):
    """`leave` (and the base of every /live event): the session's id, an integer. Text that
    cannot be stored (NUL, a lone surrogate) is refused by BaseSchema, naming the field."""

    session_id = fields.Int(required=True, strict=True, validate=ID)


class JoinEventSchema(LeaveEventSchema):
    """`join`: `console` marks the host console; `viewer_key` is accepted and ignored."""

    console = fields.Bool(load_default=False)
    viewer_key = fields.Raw(load_default=None, metadata={"description": "ignored"})


class MessageEventSchema(LeaveEventSchema):
    """`message`: the length and blank checks are the chat service's, as for the API."""

    body = fields.Str(required=True)
    kind = fields.Str(load_default="chat", validate=validate.OneOf(["chat", "question"]))


class LineupSchema(BaseSchema):
    product_ids = fields.List(
        fields.Int(strict=True, validate=ID), required=True, validate=validate.Length(max=100)
    )


class LineupListSchema(BaseSchema):
    items = fields.List(fields.Nested(ProductBriefSchema))


class SalesSchema(BaseSchema):
    viewers = fields.Int()
    peak_viewers = fields.Int()
    orders = fields.Int()
    units = fields.Int()
    gross = fields.Int()
    currency = fields.Str()
    products = fields.List(fields.Dict())


class PinHistoryQuerySchema(BaseSchema):
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))
    before = fields.Int(
        validate=ID, metadata={"description": "Only pins older than this pin id (next page)."}
    )


class PinHistoryPriceSchema(BaseSchema):
    variant_id = fields.Int()
    variant_name = fields.Str()
    regular_price = fields.Int(metadata={"description": "The variant's regular price now."})
    live_price = fields.Int()


class PinHistorySchema(BaseSchema):
    """One pin of a cooperative's product, as its history lists it."""

    id = fields.Int()
    session_id = fields.Int()
    session_title = fields.Str()
    host_id = fields.Int()
    host_name = fields.Str()
    product_id = fields.Int()
    product_name = fields.Str()
    per_buyer_limit = fields.Int(allow_none=True)
    created_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    currency = fields.Str()
    prices = fields.List(fields.Nested(PinHistoryPriceSchema))

    @pre_dump
    def _from_pin(self, pin, **_kw) -> dict:
        """A pin with its session, host, product and variants loaded, as flat fields."""
        variants = {v.id: v for v in pin.product.variants}
        return {
            "id": pin.id,
            "session_id": pin.session_id,
            "session_title": pin.session.title,
            "host_id": pin.session.host_id,
            "host_name": pin.session.host.name if pin.session.host else "",
            "product_id": pin.product_id,
            "product_name": pin.product.name,
            "per_buyer_limit": pin.per_buyer_limit,
            "created_at": pin.created_at,
            "ended_at": pin.ended_at,
            "currency": current_app.config["CURRENCY"],
            "prices": [
                {
                    "variant_id": price.variant_id,
                    "variant_name": variants[price.variant_id].name,
                    "regular_price": variants[price.variant_id].price,
                    "live_price": price.live_price,
                }
                for price in sorted(pin.prices, key=lambda p: p.variant_id)
                if price.variant_id in variants
            ],
        }


class PinHistoryListSchema(BaseSchema):
    items = fields.List(fields.Nested(PinHistorySchema))
