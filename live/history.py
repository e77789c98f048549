"""A cooperative's pin history: every time a host featured one of its products, at what prices.

Read-only; pins are live's rows, so the query lives here (shop never imports live). Access
follows the other cooperative-scoped reads: its own coop members and admins.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from live.models import LiveSession, Pin
from shop.accounts import can_manage_cooperative
from shop.errors import Forbidden, NotFound
from shop.extensions import db
from shop.i18n import N_
from shop.models import Cooperative, Product, Role, User


def check_can_read(user: User, cooperative_id: int) -> Cooperative:
    """The cooperative, for its own coop members and admins; 403 for others, 404 if absent."""
    if user.role not in (Role.COOP, Role.ADMIN):
        raise Forbidden(N_("Only cooperative members and admins see pin histories."))
    cooperative = db.session.get(Cooperative, cooperative_id)
    if cooperative is None:
        raise NotFound(N_("No such cooperative."))
    if not can_manage_cooperative(user, cooperative_id):
        raise Forbidden(N_("You can only see your own cooperative's pins."))
    return cooperative


def cooperative_pins(
    cooperative_id: int | None, *, limit: int = 100, before: int | None = None
) -> list[Pin]:
    """Pins of the cooperative's products (every cooperative's for None), newest first.

    Newest is the highest id (ids grow as pins are made, and break ties between pins made in
    the same instant); `before` pages back to pins with a smaller id.
    """
    query = (
        select(Pin)
        .join(Product, Product.id == Pin.product_id)
        .options(
            joinedload(Pin.session).joinedload(LiveSession.host),
            joinedload(Pin.product).selectinload(Product.variants),
            joinedload(Pin.product).joinedload(Product.cooperative),
            selectinload(Pin.prices),
        )
        .order_by(Pin.id.desc())
        .limit(limit)
    )
    if cooperative_id is not None:
        query = query.where(Product.cooperative_id == cooperative_id)
    if before is not None:
        query = query.where(Pin.id < before)
    return list(db.session.scalars(query).unique())
