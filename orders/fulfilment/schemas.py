"""marshmallow schemas for shipments, the pick list and shipping details."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import ValidationError, fields, validate
from webargs.fields import DelimitedList

from orders.models import ShipmentStatus
from orders.schemas import ShipmentSchema as BaseShipmentSchema
from shop.i18n import N_
from shop.schemas import ID, BaseSchema

STATUSES = [s.value for s in ShipmentStatus]


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError(N_("Must not be blank."))


class CoopShipmentSchema(BaseShipmentSchema):
    """API.md's shipment, plus the order number, live session and timestamps."""

    order_number = fields.Str(attribute="order.number")
    address = fields.Dict(attribute="order.address")  # where the cooperative sends the parcel
    live_session_id = fields.Int(attribute="order.live_session_id", allow_none=True)
    created_at = fields.DateTime()
    packed_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class ShipmentListSchema(BaseSchema):
    items = fields.List(fields.Nested(CoopShipmentSchema))


class ShipmentQuerySchema(BaseSchema):
    """`status` takes one status or several separated by commas; default: all but cancelled."""

    status = DelimitedList(fields.Str(validate=validate.OneOf(STATUSES)))
    live_session_id = fields.Int(validate=ID)
    cooperative_id = fields.Int(
        validate=ID, metadata={"description": "admins only: one cooperative"}
    )


class ShipSchema(BaseSchema):
    carrier = fields.Str(required=True, validate=[validate.Length(max=80), _not_blank])
    tracking_number = fields.Str(required=True, validate=[validate.Length(max=80), _not_blank])


class PickLineSchema(BaseSchema):
    variant_id = fields.Int()
    product_name = fields.Str()
    variant_name = fields.Str()
    quantity = fields.Int()


class PickListSchema(BaseSchema):
    items = fields.List(fields.Nested(PickLineSchema))


class PickListQuerySchema(BaseSchema):
    live_session_id = fields.Int(validate=ID)
    cooperative_id = fields.Int(
        validate=ID, metadata={"description": "admins only: one cooperative"}
    )


class CsvUploadSchema(BaseSchema):
    file = Upload(metadata={"description": "CSV: order number, carrier, tracking number"})


class ImportQuerySchema(BaseSchema):
    cooperative_id = fields.Int(
        validate=ID, metadata={"description": "admins: whose shipments the file ships"}
    )
