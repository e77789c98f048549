"""Report query arguments and answers, exactly as API.md names them."""

from __future__ import annotations

from datetime import date

from marshmallow import ValidationError, fields, validate, validates_schema

from orders.reports.services import GROUPS
from shop.schemas import BaseSchema

# Dates outside this would overflow the UTC bounds arithmetic; no sale is that old or new.
DATES = validate.Range(min=date(2000, 1, 1), max=date(2999, 12, 31))


class SalesQuerySchema(BaseSchema):
    """`?group_by=&from=&to=&format=`: local dates, inclusive; `from` may not follow `to`."""

    group_by = fields.Str(load_default="day", validate=validate.OneOf(GROUPS))
    start = fields.Date(data_key="from", load_default=None, format="%Y-%m-%d", validate=DATES)
    end = fields.Date(data_key="to", load_default=None, format="%Y-%m-%d", validate=DATES)
    format = fields.Str(load_default="json", validate=validate.OneOf(["json", "csv"]))

    @validates_schema
    def _ordered(self, data: dict, **_kwargs) -> None:
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise ValidationError("Must not be before `from`.", field_name="to")


class FiguresSchema(BaseSchema):
    orders = fields.Int()
    units = fields.Int()
    gross = fields.Int()
    refunds = fields.Int()
    net = fields.Int()
    buyers = fields.Int()


class SalesRowSchema(FiguresSchema):
    key = fields.Raw(allow_none=True, metadata={"description": "YYYY-MM-DD or the id grouped by"})
    label = fields.Str()


class SalesReportSchema(BaseSchema):
    rows = fields.List(fields.Nested(SalesRowSchema))
    totals = fields.Nested(FiguresSchema)
