"""/api/v1/reports/sales: parse the range, aggregate in SQL, answer JSON or CSV."""

from __future__ import annotations

import csv
import io

from flask import Response
from flask_smorest import Blueprint

from orders.reports import services
from orders.reports.schemas import SalesQuerySchema, SalesReportSchema
from shop.accounts import require_user
from shop.models import Role
from shop.text import encode_utf8

reports_bp = Blueprint("reports", __name__, url_prefix="/reports", description="Sales reports")
blueprints = [reports_bp]

CSV_COLUMNS = ("key", "label", "orders", "units", "gross", "refunds", "net", "buyers")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@reports_bp.route("/sales")
@reports_bp.arguments(SalesQuerySchema, location="query")
@reports_bp.response(200, SalesReportSchema)
def sales(query: dict):
    """Sales by day, product, cooperative or session; admins all, hosts and coops their own.

    `from`/`to` are local dates (TIMEZONE), inclusive. `format=csv` answers `text/csv`
    (UTF-8 with BOM): a header, one line per row with the same fields and numbers as the JSON,
    then a line keyed `total` with the totals.
    """
    user = require_user(Role.ADMIN, Role.HOST, Role.COOP)
    report = services.sales_report(
        user, group_by=query["group_by"], start=query["start"], end=query["end"]
    )
    if query["format"] == "csv":
        return csv_response(report, filename=csv_filename(query))
    return report


def csv_filename(query: dict) -> str:
    span = "-".join(str(d) for d in (query.get("start"), query.get("end")) if d) or "all"
    return f"sales-by-{query['group_by']}-{span}.csv"


def _cell(value) -> object:
    """Text a spreadsheet would run as a formula is quoted; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def to_csv(report: dict) -> str:
    """One column per row field, then a labelled totals line; BOM so Excel reads UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        writer.writerow([_cell(row[name]) for name in CSV_COLUMNS])
    totals = report["totals"]
    writer.writerow(["total", "Total", *(totals[name] for name in CSV_COLUMNS[2:])])
    return "\ufeff" + out.getvalue()


def csv_response(report: dict, *, filename: str) -> Response:
    return Response(
        encode_utf8(to_csv(report)),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
