"""/api/v1/reports/live-sessions/<id>: one session's report for its host or an admin."""

from __future__ import annotations

from flask_smorest import Blueprint

from live.reports import services
from live.reports.schemas import SessionReportSchema
from shop.accounts import require_user

session_reports_bp = Blueprint(
    "session_reports", __name__, url_prefix="/reports", description="Live session reports"
)
blueprints = [session_reports_bp]


@session_reports_bp.route("/live-sessions/<int:session_id>")
@session_reports_bp.response(200, SessionReportSchema)
def session_report(session_id: int):
    """Sales, viewers, conversion, the per-minute curve, top products and sales per pin."""
    return services.session_report(require_user(), session_id)
