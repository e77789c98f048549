"""Order pages (checkout, my orders, one order, pay, admin search) and the Stripe webhook."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError

from orders import refunds, services, webhooks
from orders.models import OrderStatus, RefundStatus, ShipmentStatus
from orders.schemas import AddressSchema
from orders.services import Line
from shop import cart
from shop.accounts import page_roles_required
from shop.errors import DomainError
from shop.extensions import db
from shop.models import Role, User, Variant

bp = Blueprint(
    "orders_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/orders-static",
)
blueprints = [bp, webhooks.bp]
csrf_exempt = [webhooks.bp]

# How each order event reads in the timeline (kinds are written by the order service).
EVENT_LABELS = {
    "placed": _l("Order placed; stock is held for you"),
    "payment_started": _l("Payment started"),
    "payment_failed": _l("A payment attempt failed; the order can still be paid"),
    "paid": _l("Paid"),
    "expired": _l("Not paid in time; the order was cancelled and the stock released"),
    "cancelled_by_buyer": _l("Cancelled by the buyer"),
    "cancelled_by_admin": _l("Cancelled by the service centre"),
    "refunded_by_buyer": _l("Cancelled by the buyer and refunded"),
    "refunded_by_admin": _l("Refunded by the service centre"),
    "refunded": _l("Refunded"),
    "late_payment_restocked": _l(
        "Payment arrived after the order expired; the stock was taken again"
    ),
    "late_payment_no_stock": _l("Payment arrived after the order expired and the stock was gone"),
    "late_payment_refunded": _l("That late payment was refunded in full"),
    "stripe_payment_cancelled": _l("The payment was cancelled at Stripe; it can no longer be made"),
    "stripe_payment_not_cancelled": _l(
        "Stripe could not cancel the payment; if it goes through, it is kept or refunded"
    ),
    "stripe_refunded": _l("Refunded in full through Stripe"),
    "refund_requested": _l("Refund requested"),
    "refund_pending": _l("The refund is on its way to the buyer's account"),
    "refund_failed": _l("The refund failed; the service centre will see to it"),
    "refund_reported": _l("The payment provider reported on the refund"),
    "payment_mismatch": _l("A payment did not match this order; the service centre will check it"),
    "dispute": _l("The buyer disputed the payment with their bank"),
    "stripe_partly_refunded": _l("Partly refunded through Stripe"),
    "shipped": _l("Shipped"),
    "delivered": _l("Delivered"),
}


def _can_cancel(order, user: User) -> bool:
    if order.status == OrderStatus.PENDING_PAYMENT:
        return True
    if order.refund_status not in refunds.RETRYABLE:
        return False  # a refund is under way, or done
    if user.is_admin:
        return order.status in refunds.REFUNDABLE or refunds.late_refund_failed(order)
    shipped = any(
        s.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED) for s in order.shipments
    )
    return order.status == OrderStatus.PAID and not shipped


@bp.route("/checkout", methods=["GET", "POST"])
@page_roles_required()
def checkout():
    """The cart (session["cart"]) becomes an order; the address is prefilled from last time."""
    items = cart.contents()
    variants = {
        v.id: v for v in db.session.scalars(db.select(Variant).where(Variant.id.in_(items)))
    }
    lines = [(variants[vid], qty) for vid, qty in items.items() if vid in variants]
    address = current_user.saved_address or {}
    errors: dict = {}
    if request.method == "POST":
        address = {
            k: request.form.get(k, "").strip() for k in ("name", "phone", "region", "detail")
        }
        try:
            address = AddressSchema().load(address)
            if not lines:
                raise DomainError(_("Your cart is empty."))
            order = services.place_order(
                current_user._get_current_object(),
                [Line(variant.id, qty) for variant, qty in lines],
                address,
            )
        except ValidationError as err:
            errors = err.messages  # type: ignore[assignment]
        except DomainError as err:
            errors = {"_": [err.message]}
        else:
            cart.clear()
            return redirect(url_for("orders_pages.pay", order_id=order.id))
    total = sum(variant.price * qty for variant, qty in lines)
    status = 422 if errors else 200
    return render_template(
        "orders/checkout.html", lines=lines, total=total, address=address, errors=errors
    ), status


@bp.route("/orders")
@page_roles_required()
def my_orders():
    orders = services.list_orders(current_user._get_current_object())
    return render_template("orders/list.html", orders=orders, admin=False)


@bp.route("/orders/<int:order_id>")
@page_roles_required()
def order_detail(order_id: int):
    user = current_user._get_current_object()
    order = services.get_visible_order(user, order_id)
    actors = {}
    if user.is_admin:
        ids = {e.actor_id for e in order.events if e.actor_id}
        actors = {u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_(ids)))}
    return render_template(
        "orders/detail.html",
        order=order,
        labels=EVENT_LABELS,
        can_pay=order.status == OrderStatus.PENDING_PAYMENT and order.buyer_id == user.id,
        can_cancel=_can_cancel(order, user),
        actors=actors,
        waiting=bool(request.args.get("payment_intent")),
    )


@bp.route("/orders/<int:order_id>/pay")
@page_roles_required()
def pay(order_id: int):
    """Demo: a plain confirm button. Stripe: the Payment Element; the webhook marks it paid."""
    order = services.get_visible_order(current_user._get_current_object(), order_id)
    if order.buyer_id != current_user.id or order.status != OrderStatus.PENDING_PAYMENT:
        return redirect(url_for("orders_pages.order_detail", order_id=order.id))
    return render_template(
        "orders/pay.html",
        order=order,
        provider=current_app.config["PAYMENT_PROVIDER"],
        publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY") or "",
    )


@bp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@page_roles_required()
def cancel(order_id: int):
    user = current_user._get_current_object()
    order = services.get_visible_order(user, order_id)
    try:
        order = refunds.cancel_order(order, actor=user)
    except DomainError as err:
        flash(err.message, "error")
    else:
        flash(_cancel_outcome(order))
    return redirect(url_for("orders_pages.order_detail", order_id=order_id))


def _cancel_outcome(order) -> str:
    if order.refund_status == RefundStatus.PENDING:
        return _("Refund requested; it reaches the buyer's account in a few days.")
    if order.refund_status in (RefundStatus.FAILED, RefundStatus.CANCELED):
        return _("The refund failed; the service centre will see to it.")
    return _("Refunded.") if order.status == OrderStatus.REFUNDED else _("Cancelled.")


@bp.route("/admin/orders")
@page_roles_required(Role.ADMIN)
def admin_orders():
    """Find any order by its number; the order page then shows its whole history."""
    number = (request.args.get("number") or "").strip()
    orders = services.list_orders(current_user._get_current_object(), number=number or None)
    if number and len(orders) == 1:
        return redirect(url_for("orders_pages.order_detail", order_id=orders[0].id))
    if number and not orders:
        flash(_("No order has that number."), "error")
    return render_template("orders/list.html", orders=orders, admin=True, number=number)
