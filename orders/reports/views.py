"""/reports: sales tables and a chart for what the user may see, with CSV links."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template, request, url_for
from marshmallow import ValidationError

from orders.reports import services
from orders.reports.schemas import SalesQuerySchema
from shop.accounts import page_roles_required, require_user
from shop.models import Role, utcnow

bp = Blueprint(
    "reports_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/reports-static",
)
blueprints = [bp]

TABS = {
    Role.ADMIN: ("day", "product", "cooperative", "session"),
    Role.HOST: ("day", "product", "cooperative", "session"),
    Role.COOP: ("day", "product", "session"),
}
DEFAULT_DAYS = 30


def _default_range() -> dict:
    """The last 30 local days, today included."""
    today = (utcnow() + services.utc_offset()).date()
    return {"from": str(today - timedelta(days=DEFAULT_DAYS - 1)), "to": str(today)}


@bp.route("/reports")
@page_roles_required(Role.ADMIN, Role.HOST, Role.COOP)
def sales():
    """One grouping at a time (tabs), a date range form, totals, chart and CSV download."""
    user = require_user()
    args = {**_default_range(), **{k: v for k, v in request.args.items() if v}}
    tabs = TABS[user.role]
    try:
        query = SalesQuerySchema().load(args)
    except ValidationError as err:
        return render_template(
            "reports/sales.html", tabs=tabs, args=args, errors=err.messages, report=None
        ), 422
    group_by = query["group_by"] if query["group_by"] in tabs else "day"
    report = services.sales_report(user, group_by=group_by, start=query["start"], end=query["end"])
    span = {"from": query["start"], "to": query["end"]}
    csv_url = url_for(
        "reports.sales",
        group_by=group_by,
        format="csv",
        **{k: str(v) for k, v in span.items() if v},
    )
    chart = {
        "labels": [row["label"] for row in report["rows"]],
        "gross": [row["gross"] for row in report["rows"]],
        "net": [row["net"] for row in report["rows"]],
    }
    return render_template(
        "reports/sales.html",
        tabs=tabs,
        group_by=group_by,
        args={**args, "group_by": group_by},
        span=span,
        report=report,
        chart=chart,
        csv_url=csv_url,
        errors={},
        session_links=user.role in (Role.ADMIN, Role.HOST),
    )
