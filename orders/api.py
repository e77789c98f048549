"""/api/v1 for orders and payments: parse with a schema, call a service, dump with a schema."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from orders import payments, refunds, services
from orders.errors import InvalidTransition, OrderNotFound
from orders.models import OrderStatus
from orders.schemas import (
    OrderCreateSchema,
    OrderListSchema,
    OrderQuerySchema,
    OrderSchema,
    PaymentSchema,
)
from orders.services import Line
from shop.accounts import require_user
from shop.errors import Forbidden
from shop.i18n import N_

orders_bp = Blueprint("orders", __name__, description="Orders, payments and refunds")
blueprints = [orders_bp]


@orders_bp.route("/orders", methods=["POST"])
@orders_bp.arguments(OrderCreateSchema)
@orders_bp.response(201, OrderSchema)
def create_order(data: dict):
    """Cart checkout at regular prices; the order holds its stock until `expires_at`."""
    buyer = require_user()
    lines = [Line(item["variant_id"], item["quantity"]) for item in data["items"]]
    return services.place_order(buyer, lines, data["address"])


@orders_bp.route("/orders", methods=["GET"])
@orders_bp.arguments(OrderQuerySchema, location="query")
@orders_bp.response(200, OrderListSchema)
def list_orders(query: dict):
    """The buyer's own orders; an admin sees all and may look one up by `number`."""
    user = require_user()
    return {"items": services.list_orders(user, number=query.get("number"))}


@orders_bp.route("/orders/<int:order_id>", methods=["GET"])
@orders_bp.response(200, OrderSchema)
def get_order(order_id: int):
    return services.get_visible_order(require_user(), order_id)


@orders_bp.route("/orders/<int:order_id>/payment", methods=["POST"])
@orders_bp.response(200, PaymentSchema)
def start_payment(order_id: int):
    """Create (once) and return what the browser needs to pay this order."""
    user = require_user()
    order = services.get_visible_order(user, order_id)
    if order.buyer_id != user.id:
        raise Forbidden(N_("Only the buyer pays an order."))
    return payments.start_payment(order.id, gateway=payments.gateway())


@orders_bp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@orders_bp.response(200, OrderSchema)
def cancel_order(order_id: int):
    """Unpaid: cancelled, stock back. Paid and not shipped (any, for an admin): refunded."""
    user = require_user()
    order = services.get_visible_order(user, order_id)
    return refunds.cancel_order(order, actor=user)


@orders_bp.route("/payments/demo/<int:order_id>/confirm", methods=["POST"])
@orders_bp.response(200, OrderSchema)
def confirm_demo_payment(order_id: int):
    """The demo provider's 'payment': no money moves; the same success path as Stripe."""
    user = require_user()
    if current_app.config["PAYMENT_PROVIDER"] != "demo":
        raise OrderNotFound(N_("The demo provider is not in use on this server."))
    order = services.get_visible_order(user, order_id)
    if order.buyer_id != user.id:
        raise Forbidden(N_("Only the buyer pays an order."))
    if order.status == OrderStatus.PAID:
        return order
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise InvalidTransition(f"Order {order.number} is {order.status}; nothing to pay.")
    return refunds.settle_payment(
        order.id, provider="demo", reference=f"demo_pi_{order.number}", actor_id=user.id
    )
