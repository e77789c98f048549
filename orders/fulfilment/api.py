"""/api/v1 for cooperative fulfilment: parse with a schema, call a service, dump with a schema."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_smorest import Blueprint

from orders.fulfilment import csvio, services
from orders.fulfilment.schemas import (
    CoopShipmentSchema,
    CsvUploadSchema,
    ImportQuerySchema,
    PickListQuerySchema,
    PickListSchema,
    ShipmentListSchema,
    ShipmentQuerySchema,
    ShipSchema,
)
from orders.schemas import OrderSchema
from shop.accounts import require_user
from shop.errors import Invalid
from shop.models import Role, utcnow
from shop.templating import local_time

fulfilment_bp = Blueprint(
    "fulfilment", __name__, url_prefix="/fulfilment", description="Cooperative fulfilment"
)
receipt_bp = Blueprint("receipt", __name__, description="Buyers confirm receipt")
blueprints = [fulfilment_bp, receipt_bp]


@fulfilment_bp.before_request
def _staff_only() -> None:
    """401/403 before any body is parsed: only cooperative members and admins get further."""
    require_user(Role.COOP, Role.ADMIN)


def init_app(app: Flask) -> None:
    """Register `flask orders auto-deliver` on the order command group."""
    from orders.fulfilment import cli  # noqa: F401


@fulfilment_bp.route("/shipments", methods=["GET"])
@fulfilment_bp.arguments(ShipmentQuerySchema, location="query")
@fulfilment_bp.response(200, ShipmentListSchema)
def list_shipments(query: dict):
    """The cooperative's queue (an admin's: every cooperative's); `status` may list several."""
    return {"items": services.list_shipments(require_user(), **_filters(query))}


@fulfilment_bp.route("/shipments/export", methods=["GET"])
@fulfilment_bp.arguments(ShipmentQuerySchema, location="query")
@fulfilment_bp.doc(responses={"200": {"description": "CSV (UTF-8 with BOM) for a courier"}})
def export_shipments(query: dict):
    """The shipments to pack (default: pending and packed) as a courier's CSV."""
    filters = _filters(query)
    filters["statuses"] = filters["statuses"] or list(services.OPEN)
    shipments = services.list_shipments(require_user(), **filters)
    filename = f"shipments-{local_time(utcnow(), '%Y%m%d')}.csv"
    return Response(
        csvio.write_courier_csv(shipments),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@fulfilment_bp.route("/shipments/import", methods=["POST"])
@fulfilment_bp.arguments(ImportQuerySchema, location="query")
@fulfilment_bp.arguments(CsvUploadSchema, location="files")
@fulfilment_bp.response(200, ShipmentListSchema)
def import_shipments(query: dict, files: dict):
    """Ship many from a CSV (order number, carrier, tracking number): all lines or none.

    Send the file as multipart field `file`, or as the raw body with a text/csv content type.
    A bad file is 422 `invalid_csv` with `fields.file` mapping each bad line number to reasons.
    """
    user = require_user()
    upload = files.get("file")
    data = upload.read() if upload else (request.get_data() if not request.form else b"")
    if not data:
        raise Invalid(fields={"file": ["Upload a CSV file."]})
    shipped = services.ship_from_csv(user, data, cooperative_id=query.get("cooperative_id"))
    return {"items": shipped}


@fulfilment_bp.route("/shipments/<int:shipment_id>", methods=["GET"])
@fulfilment_bp.response(200, CoopShipmentSchema)
def get_shipment(shipment_id: int):
    return services.get_shipment(require_user(), shipment_id)


@fulfilment_bp.route("/pick-list", methods=["GET"])
@fulfilment_bp.arguments(PickListQuerySchema, location="query")
@fulfilment_bp.response(200, PickListSchema)
def pick_list(query: dict):
    """Units to take from the cold store, per variant, over shipments not yet shipped."""
    return {"items": services.pick_list(require_user(), **query)}


@fulfilment_bp.route("/shipments/<int:shipment_id>/pack", methods=["POST"])
@fulfilment_bp.response(200, CoopShipmentSchema)
def pack(shipment_id: int):
    return services.pack(require_user(), shipment_id)


@fulfilment_bp.route("/shipments/<int:shipment_id>/ship", methods=["POST"])
@fulfilment_bp.arguments(ShipSchema)
@fulfilment_bp.response(200, CoopShipmentSchema)
def ship(data: dict, shipment_id: int):
    """Hand over to the carrier; the order is `shipped` once all its shipments are."""
    return services.ship(require_user(), shipment_id, **data)


@receipt_bp.route("/orders/<int:order_id>/confirm-receipt", methods=["POST"])
@receipt_bp.response(200, OrderSchema)
def confirm_receipt(order_id: int):
    """The buyer confirms the parcel arrived: order (and shipments) `delivered`."""
    return services.confirm_receipt(require_user(), order_id)


def _filters(query: dict) -> dict:
    return {
        "statuses": query.get("status"),
        "live_session_id": query.get("live_session_id"),
        "cooperative_id": query.get("cooperative_id"),
    }
