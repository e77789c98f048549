"""marshmallow schemas for orders, shipments, addresses and payments (API.md shapes)."""

from __future__ import annotations

from marshmallow import fields, validate

from shop.schemas import ID, BaseSchema

PHONE = validate.Regexp(r"^\+?[0-9][0-9 \-]{4,19}$", error="Enter a phone number.")


class AddressSchema(BaseSchema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    phone = fields.Str(required=True, validate=PHONE)
    region = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    detail = fields.Str(required=True, validate=validate.Length(min=1, max=200))


class OrderLineSchema(BaseSchema):
    variant_id = fields.Int(required=True, strict=True, validate=ID)
    quantity = fields.Int(required=True, strict=True, validate=validate.Range(min=1, max=99))


class OrderCreateSchema(BaseSchema):
    items = fields.List(
        fields.Nested(OrderLineSchema), required=True, validate=validate.Length(min=1, max=50)
    )
    address = fields.Nested(AddressSchema, required=True)


class OrderQuerySchema(BaseSchema):
    number = fields.Str(validate=validate.Length(max=32))


class OrderItemSchema(BaseSchema):
    variant_id = fields.Int()
    product_id = fields.Int()
    name = fields.Str()
    unit_price = fields.Int()
    quantity = fields.Int()
    cooperative_id = fields.Int()


class ShipmentSchema(BaseSchema):
    id = fields.Int()
    order_id = fields.Int()
    cooperative_id = fields.Int()
    status = fields.Str()
    carrier = fields.Str(allow_none=True)
    tracking_number = fields.Str(allow_none=True)
    items = fields.List(fields.Nested(OrderItemSchema))


class OrderSchema(BaseSchema):
    id = fields.Int()
    number = fields.Str()
    status = fields.Str()
    items = fields.List(fields.Nested(OrderItemSchema))
    total = fields.Int()
    currency = fields.Str()
    live_session_id = fields.Int(allow_none=True)
    created_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    refund_status = fields.Str(allow_none=True)
    refunded_amount = fields.Int()
    shipments = fields.List(fields.Nested(ShipmentSchema))


class OrderListSchema(BaseSchema):
    items = fields.List(fields.Nested(OrderSchema))


class PaymentSchema(BaseSchema):
    provider = fields.Str()
    client_secret = fields.Str(allow_none=True)
    publishable_key = fields.Str(allow_none=True)
