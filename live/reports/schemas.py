"""The one-session report as API.md names it, plus the session and its sales per pin."""

from __future__ import annotations

from marshmallow import fields

from orders.reports.schemas import FiguresSchema
from shop.schemas import BaseSchema


class MinuteSchema(BaseSchema):
    minute = fields.Str(metadata={"description": "UTC minute, ISO 8601 (2026-11-10T15:59:00Z)"})
    orders = fields.Int()
    units = fields.Int()
    gross = fields.Int()
    viewers = fields.Int()


class TopProductSchema(BaseSchema):
    product_id = fields.Int()
    name = fields.Str()
    units = fields.Int()
    gross = fields.Int()


class PinSalesSchema(BaseSchema):
    pin_id = fields.Int(allow_none=True, metadata={"description": "null: bought without a pin"})
    product_id = fields.Int(allow_none=True)
    name = fields.Str(allow_none=True)
    pinned_at = fields.DateTime(allow_none=True)
    unpinned_at = fields.DateTime(allow_none=True)
    orders = fields.Int()
    units = fields.Int()
    gross = fields.Int()
    buyers = fields.Int()


class ReportSessionSchema(BaseSchema):
    id = fields.Int()
    title = fields.Str()
    status = fields.Str()
    host_id = fields.Int()
    started_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)


class SessionReportSchema(FiguresSchema):
    peak_viewers = fields.Int()
    unique_viewers = fields.Int()
    conversion = fields.Float(
        metadata={"description": "buyers / unique_viewers; 0 without viewers"}
    )
    per_minute = fields.List(fields.Nested(MinuteSchema))
    top_products = fields.List(fields.Nested(TopProductSchema))
    pins = fields.List(fields.Nested(PinSalesSchema))
    session = fields.Nested(ReportSessionSchema)
