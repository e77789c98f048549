"""/reports/live-sessions/<id>: the printable, shareable report of one session."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, render_template, request, url_for

from live.reports import services
from orders.reports.services import utc_offset
from shop.accounts import page_roles_required, require_user

bp = Blueprint("session_report_pages", __name__, template_folder="templates")
blueprints = [bp]


def _local_labels(minutes: list[str]) -> list[str]:
    """UTC minute keys as local clock times; with the date when the session spans days."""
    offset = utc_offset()
    times = [datetime.strptime(m, "%Y-%m-%dT%H:%M:00Z") + offset for m in minutes]
    fmt = "%H:%M" if len({t.date() for t in times}) <= 1 else "%m-%d %H:%M"
    return [t.strftime(fmt) for t in times]


@bp.route("/reports/live-sessions/<int:session_id>")
@page_roles_required()
def session_report(session_id: int):
    """Figures, per-minute sales with the viewer curve, top products and sales per pin."""
    report = services.session_report(require_user(), session_id)
    minutes = report["per_minute"]
    chart = {
        "labels": _local_labels([m["minute"] for m in minutes]),
        "gross": [m["gross"] for m in minutes],
        "viewers": [m["viewers"] for m in minutes],
    }
    share_url = request.host_url.rstrip("/") + url_for(
        "session_report_pages.session_report", session_id=session_id
    )
    return render_template(
        "reports/session.html",
        report=report,
        session=report["session"],
        chart=chart,
        share_url=share_url,
    )
