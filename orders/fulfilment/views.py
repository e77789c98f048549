"""Cooperative dashboard pages (/coop), printable pick list and packing slips, public trace page.

Forms post here and go back to the dashboard (post/redirect/get); the work is done by
`orders.fulfilment.services` and `shop.services.update_variant`, which own the transactions.
"""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from orders.fulfilment import services
from orders.models import Order, Shipment
from shop.accounts import page_roles_required, require_user
from shop.errors import DomainError
from shop.extensions import db
from shop.i18n import translate_message
from shop.models import Cooperative, Role
from shop.schemas import MAX_STOCK
from shop.views import safe_next

bp = Blueprint(
    "fulfilment_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/fulfilment-static",
)
blueprints = [bp]
STAFF = (Role.COOP, Role.ADMIN)
STATUS_CHOICES = ("open", "pending", "packed", "shipped", "delivered", "cancelled", "all")
CARRIERS = ("顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递", "京东物流", "中国邮政 EMS")


def status_labels() -> dict[str, str]:
    """Shown names of the queue filters and shipment statuses, in the page's language."""
    return {
        "open": _("To do (pending + packed)"),
        "pending": _("Pending"),
        "packed": _("Packed"),
        "shipped": _("Shipped"),
        "delivered": _("Delivered"),
        "cancelled": _("Cancelled"),
        "all": _("All"),
    }


def _filters() -> dict:
    """The queue filters from the query string: status (default open), live session, cooperative."""
    status = request.args.get("status", "open")
    status = status if status in STATUS_CHOICES else "open"
    return {
        "status": status,
        "live_session_id": _id_arg("live_session_id"),
        "cooperative_id": _id_arg("cooperative_id"),
    }


def _id_arg(name: str) -> int | None:
    """An id from the query string; one no row can have (0, a 20-digit number) filters nothing."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value < 2**31 else None


def _statuses(status: str) -> list[str] | None:
    if status == "open":
        return list(services.OPEN)
    return None if status == "all" else [status]


def _queue(user, filters: dict) -> list[Shipment]:
    return services.list_shipments(
        user,
        statuses=_statuses(filters["status"]),
        live_session_id=filters["live_session_id"],
        cooperative_id=filters["cooperative_id"],
    )


@bp.route("/coop")
@page_roles_required(*STAFF)
def dashboard():
    """The day's work on one page: queue, CSV in and out, stock with low-stock warnings."""
    user = require_user(*STAFF)
    filters = _filters()
    scope = services.cooperative_scope(user, filters["cooperative_id"])
    return render_template(
        "fulfilment/dashboard.html",
        shipments=_queue(user, filters),
        filters=filters,
        statuses=STATUS_CHOICES,
        labels=status_labels(),
        carriers=CARRIERS,
        sessions=_live_sessions(scope),
        cooperative=db.session.get(Cooperative, scope) if scope else None,
        cooperatives=_all_cooperatives() if user.role == Role.ADMIN else [],
        variants=services.cooperative_variants(user, scope),
        room_scope=scope,
        sections=_coop_sections(scope),
    )


def _coop_sections(scope: int | None) -> list[Markup]:
    """HTML of the sections other packages registered for the dashboard (live: recent pins)."""
    rendered = []
    for section in current_app.extensions.get("farmlive.coop_sections", []):
        result = section(scope)
        if result:
            template_name, context = result
            rendered.append(Markup(render_template(template_name, **context)))
    return rendered


@bp.route("/coop/shipments/<int:shipment_id>/pack", methods=["POST"])
@page_roles_required(*STAFF)
def pack(shipment_id: int):
    shipment = _try(lambda: services.pack(require_user(), shipment_id))
    if shipment:
        flash(_("Order %(number)s packed.", number=shipment.order.number), "success")
    return redirect(_back())


@bp.route("/coop/shipments/<int:shipment_id>/ship", methods=["POST"])
@page_roles_required(*STAFF)
def ship(shipment_id: int):
    shipment = _try(
        lambda: services.ship(
            require_user(),
            shipment_id,
            carrier=request.form.get("carrier", ""),
            tracking_number=request.form.get("tracking_number", ""),
        )
    )
    if shipment:
        flash(_("Order %(number)s shipped.", number=shipment.order.number), "success")
    return redirect(_back())


@bp.route("/coop/shipments/import", methods=["POST"])
@page_roles_required(*STAFF)
def import_csv():
    """Ship many from an uploaded CSV; each bad line is listed and nothing is applied."""
    upload = request.files.get("file")
    data = upload.read() if upload else b""
    if not data:
        flash(_("Choose a CSV file first."), "error")
        return redirect(_back())
    cooperative_id = request.form.get("cooperative_id", type=int)
    shipped = _try(
        lambda: services.ship_from_csv(require_user(), data, cooperative_id=cooperative_id)
    )
    if shipped is not None:
        flash(_("%(count)s shipments shipped from the file.", count=len(shipped)), "success")
    return redirect(_back())


@bp.route("/coop/stock/<int:variant_id>", methods=["POST"])
@page_roles_required(*STAFF)
def adjust_stock(variant_id: int):
    """Set a variant's stock after a count of the cold store; warn when it is running low."""
    from shop.services import update_variant

    stock = request.form.get("stock", type=int)
    if stock is None or not 0 <= stock <= MAX_STOCK:
        flash(_("Stock must be a whole number from 0 to %(max)s.", max=MAX_STOCK), "error")
        return redirect(_back())
    variant = _try(lambda: update_variant(require_user(), variant_id, {"stock": stock}))
    if variant is not None:
        flash(_("Stock of %(name)s set to %(stock)s.", name=variant.name, stock=stock), "success")
        if variant.low_stock:
            flash(_("%(name)s is running low.", name=variant.name), "warning")
    return redirect(_back())


@bp.route("/coop/pick-list")
@page_roles_required(*STAFF)
def pick_list():
    """Printable: what to take from the cold store for every shipment not yet shipped."""
    user = require_user(*STAFF)
    filters = _filters()
    lines = services.pick_list(
        user,
        live_session_id=filters["live_session_id"],
        cooperative_id=filters["cooperative_id"],
    )
    scope = services.cooperative_scope(user, filters["cooperative_id"])
    return render_template(
        "fulfilment/pick_list.html",
        lines=lines,
        filters=filters,
        cooperative=db.session.get(Cooperative, scope) if scope else None,
    )


@bp.route("/coop/slips")
@page_roles_required(*STAFF)
def slips():
    """Packing slips, one per page: `size=a4` (default) or `size=label` (100 x 150 mm)."""
    user = require_user(*STAFF)
    ids = {int(i) for i in request.args.get("ids", "").split(",") if i.strip().isdigit()}
    if ids:
        shipments = [services.get_shipment(user, i) for i in sorted(ids)]
    else:
        shipments = _queue(user, _filters())
    size = "label" if request.args.get("size") == "label" else "a4"
    cooperatives = {c.id: c for c in db.session.scalars(select(Cooperative))}
    slips = []
    for shipment in shipments:
        trace_url = url_for(".trace", token=services.trace_token(shipment.order_id), _external=True)
        slips.append(
            {
                "shipment": shipment,
                "cooperative": cooperatives.get(shipment.cooperative_id),
                "trace_url": trace_url,
                "qr": _qr_svg(trace_url),
            }
        )
    return render_template("fulfilment/slips.html", slips=slips, size=size)


@bp.route("/orders/<int:order_id>/confirm-receipt", methods=["POST"])
@page_roles_required()
def confirm_receipt(order_id: int):
    """The buyer's button on the order page (fulfilment/_shipments.html)."""
    if _try(lambda: services.confirm_receipt(require_user(), order_id)) is not None:
        flash(_("Thank you: the order is marked delivered."), "success")
    return redirect(f"/orders/{order_id}")


@bp.route("/trace/<token>")
def trace(token: str):
    """Public: where the parcel comes from and when it was packed and shipped; no buyer data."""
    return render_template("fulfilment/trace.html", shipments=services.traced_shipments(token))


def _qr_svg(url: str) -> Markup:
    """An inline SVG QR code (our own URL, so safe to embed as markup)."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return Markup(image.to_string(encoding="unicode"))


def _try(action):
    """Run a service call; a refused action becomes a flash message on the dashboard."""
    try:
        return action()
    except DomainError as err:
        flash(_describe(err), "error")
        return None


def _describe(err: DomainError) -> str:
    """The refusal in the page's language, with every bad line or field it names."""
    tr = translate_message
    file_lines = err.fields.get("file") if isinstance(err.fields, dict) else None
    if isinstance(file_lines, dict):
        details = "; ".join(
            _("Line %(line)s: %(reason)s", line=line, reason=" ".join(map(tr, reasons)))
            for line, reasons in file_lines.items()
        )
        return f"{tr(err.message)} {details}"
    if err.fields:
        details = "; ".join(
            f"{tr(name)}: {' '.join(map(tr, msgs))}" for name, msgs in err.fields.items()
        )
        return f"{tr(err.message)} ({details})"
    return tr(err.message)


def _back() -> str:
    """Back to the dashboard with the filters the form came from (a same-site /coop path only:
    `safe_next` drops control characters, which would break the Location header)."""
    target = safe_next("")
    return target if target.startswith("/coop") else url_for(".dashboard")


def _live_sessions(scope: int | None) -> list[tuple[int, str]]:
    """Sessions this cooperative sold in, for the filter (read from the table: no live import)."""
    sessions = db.metadata.tables["live_session"]
    sold_in = (
        select(Order.live_session_id)
        .join(Shipment, Shipment.order_id == Order.id)
        .where(Order.live_session_id.is_not(None))
    )
    if scope is not None:
        sold_in = sold_in.where(Shipment.cooperative_id == scope)
    query = (
        select(sessions.c.id, sessions.c.title)
        .where(sessions.c.id.in_(sold_in))
        .order_by(sessions.c.id.desc())
    )
    return [(row.id, row.title) for row in db.session.execute(query)]


def _all_cooperatives() -> list[Cooperative]:
    return list(db.session.scalars(select(Cooperative).order_by(Cooperative.name)))
