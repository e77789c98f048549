"""/api/v1 for live sessions, pins, instant checkout and messages: parse, call, dump."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint

from live import chat, checkout, history, sales, services, viewers
from live.errors import IdempotencyKeyRequired
from live.schemas import (
    CheckoutDefaultsSchema,
    CheckoutSchema,
    LineupListSchema,
    LineupSchema,
    MessageCreateSchema,
    MessageListSchema,
    MessageQuerySchema,
    MessageSchema,
    MessageUpdateSchema,
    OrderSchema,
    PinCreateSchema,
    PinHistoryListSchema,
    PinHistoryQuerySchema,
    PinSchema,
    SalesSchema,
    SessionCreateSchema,
    SessionListSchema,
    SessionQuerySchema,
    SessionSchema,
)
from shop.accounts import require_user
from shop.models import Role

bp = Blueprint("live_sessions", __name__, url_prefix="/live-sessions", description="Live sessions")
coop_bp = Blueprint(
    "cooperative_pins",
    __name__,
    url_prefix="/cooperatives",
    description="A cooperative's pin history (its own coop members and admins)",
)
blueprints = [bp, coop_bp]


def _logged_in_with_key(view: Callable) -> Callable:
    """Instant checkout: log in first (401), then one Idempotency-Key per tap (400)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        require_user()
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 255 or not key.isprintable():
            raise IdempotencyKeyRequired()
        return view(*args, **kwargs)

    return wrapper


@bp.route("", methods=["POST"])
@bp.arguments(SessionCreateSchema)
@bp.response(201, SessionSchema)
def create_session(data: dict):
    """Schedule a session; the caller is its host."""
    host = require_user(Role.HOST, Role.ADMIN)
    return services.create_session(host, **data)


@bp.route("", methods=["GET"])
@bp.arguments(SessionQuerySchema, location="query")
@bp.response(200, SessionListSchema)
def list_sessions(query: dict):
    return {"items": services.list_sessions(status=query.get("status"))}


@bp.route("/<int:session_id>", methods=["GET"])
@bp.response(200, SessionSchema)
def get_session(session_id: int):
    return services.get_session(session_id)


@bp.route("/<int:session_id>/start", methods=["POST"])
@bp.response(200, SessionSchema)
def start_session(session_id: int):
    live = services.start_session(require_user(), session_id)
    viewers.record_count(live.id, viewers.count(live.id))
    return live


@bp.route("/<int:session_id>/end", methods=["POST"])
@bp.response(200, SessionSchema)
def end_session(session_id: int):
    return services.end_session(require_user(), session_id)


@bp.route("/<int:session_id>/pins", methods=["POST"])
@bp.arguments(PinCreateSchema)
@bp.response(201, PinSchema)
def pin_product(data: dict, session_id: int):
    """Pin a product at live prices; replaces the current pin."""
    return services.pin_product(require_user(), session_id, **data)


@bp.route("/<int:session_id>/pins/current", methods=["DELETE"])
@bp.response(204)
def unpin(session_id: int):
    services.unpin(require_user(), session_id)
    return ""


@bp.route("/<int:session_id>/checkout", methods=["POST"])
@_logged_in_with_key
@bp.arguments(CheckoutSchema)
@bp.response(201, OrderSchema)
@bp.alt_response(200, schema=OrderSchema, description="The same tap again: the same order")
def checkout_now(data: dict, session_id: int):
    """Buy the pinned product at its live price; the same Idempotency-Key gives the same order."""
    order, created = checkout.checkout(
        require_user(),
        session_id,
        variant_id=data["variant_id"],
        quantity=data["quantity"],
        address=data["address"],
        idempotency_key=request.headers["Idempotency-Key"].strip(),
    )
    return order, (201 if created else 200)


@bp.route("/<int:session_id>/messages", methods=["GET"])
@bp.arguments(MessageQuerySchema, location="query")
@bp.response(200, MessageListSchema)
def list_messages(query: dict, session_id: int):
    """Visible chat and questions, newest last (`order=votes`: questions, most-asked first)."""
    if query.get("order") == "votes":
        services.get_session(session_id)
        return {"items": chat.questions_for_host(session_id, order="votes")}
    body = chat.history_json(session_id, kind=query.get("kind"))
    return current_app.response_class(body, mimetype="application/json")


@bp.route("/<int:session_id>/messages", methods=["POST"])
@bp.arguments(MessageCreateSchema)
@bp.response(201, MessageSchema)
def post_message(data: dict, session_id: int):
    """The same as the socket `message` event, for clients without a socket."""
    user = require_user()
    return chat.post_message(user, session_id, body=data["body"], kind=data["kind"])


@bp.route("/<int:session_id>/messages/<int:message_id>", methods=["PATCH"])
@bp.arguments(MessageUpdateSchema)
@bp.response(200, MessageSchema)
def moderate_message(data: dict, session_id: int, message_id: int):
    """The host hides an abusive message or marks a question answered."""
    user = require_user()
    message = None
    if data.get("hidden"):
        message = chat.hide_message(user, session_id, message_id)
    if "answered" in data:
        message = chat.mark_answered(user, session_id, message_id, data["answered"])
    if message is None:
        services.check_host(user, services.get_session(session_id))
        message = chat.get_message(session_id, message_id)
    return message


@bp.route("/<int:session_id>/messages/<int:message_id>/vote", methods=["POST"])
@bp.response(200, MessageSchema)
def vote(session_id: int, message_id: int):
    """A viewer asks the same question too."""
    return chat.vote(require_user(), session_id, message_id)


@bp.route("/<int:session_id>/lineup", methods=["GET"])
@bp.response(200, LineupListSchema)
def get_lineup(session_id: int):
    live = services.get_session(session_id)
    return {"items": [item.product for item in live.lineup]}


@bp.route("/<int:session_id>/lineup", methods=["PUT"])
@bp.arguments(LineupSchema)
@bp.response(200, LineupListSchema)
def set_lineup(data: dict, session_id: int):
    """Replace the products the host plans to feature."""
    live = services.set_lineup(require_user(), session_id, data["product_ids"])
    return {"items": [item.product for item in live.lineup]}


@bp.route("/<int:session_id>/sales", methods=["GET"])
@bp.response(200, SalesSchema)
def session_sales(session_id: int):
    """What the host console shows: viewers now and peak, paid orders per product."""
    live = services.get_session(session_id)
    services.check_host(require_user(), live)
    return {
        **sales.session_sales(session_id),
        "viewers": viewers.count(session_id),
        "peak_viewers": live.peak_viewers,
        "currency": current_app.config["CURRENCY"],
    }


@bp.route("/<int:session_id>/checkout-defaults", methods=["GET"])
@bp.response(200, CheckoutDefaultsSchema)
def checkout_defaults(session_id: int):
    """What the buy sheet prefills for the logged-in buyer: their saved or last address."""
    services.get_session(session_id)
    return {"address": checkout.saved_address(require_user())}


@coop_bp.route("/<int:cooperative_id>/pins", methods=["GET"])
@coop_bp.arguments(PinHistoryQuerySchema, location="query")
@coop_bp.response(200, PinHistoryListSchema)
def cooperative_pins(query: dict, cooperative_id: int):
    """Every pin of the cooperative's products, newest first, with its live prices."""
    history.check_can_read(require_user(), cooperative_id)
    return {"items": history.cooperative_pins(cooperative_id, **query)}
