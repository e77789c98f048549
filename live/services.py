"""Live sessions: scheduling, start and end, the line-up and pins with live prices.

Every function owns its transaction and broadcasts to the session's room only after commit.
Instant checkout lives in `live.checkout`, chat in `live.chat`, viewer counts in `live.viewers`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from live import broadcast
from live.errors import InvalidPin, InvalidSessionTransition, NotHost, NotLive, SessionNotFound
from live.models import LineupItem, LiveSession, Pin, PinPrice, SessionStatus
from shop.database import begin_write, commit_keeping_loaded
from shop.errors import Invalid
from shop.extensions import db
from shop.i18n import N_
from shop.models import Cooperative, Product, Role, User, Variant, utcnow

Clock = Callable[[], datetime]


def can_host(user: User, live: LiveSession) -> bool:
    """Its own host or an admin controls a session."""
    return user.is_authenticated and (user.role == Role.ADMIN or user.id == live.host_id)


def check_host(user: User, live: LiveSession) -> None:
    if not can_host(user, live):
        raise NotHost()


def create_session(
    host: User,
    *,
    title: str,
    description: str = "",
    stream_url: str | None = None,
    scheduled_at: datetime | None = None,
    cover: str | None = None,
) -> LiveSession:
    """Schedule a session; its host is the user who scheduled it."""
    begin_write()
    live = LiveSession(
        host_id=host.id,
        title=title.strip(),
        description=description or "",
        stream_url=(stream_url or "").strip() or None,
        scheduled_at=scheduled_at,
        cover=cover,
        status=SessionStatus.SCHEDULED,
    )
    db.session.add(live)
    db.session.commit()
    return live


def list_sessions(*, status: str | None = None, host_id: int | None = None) -> list[LiveSession]:
    """Live first by start, scheduled soonest first, ended newest first."""
    query = select(LiveSession)
    if status:
        query = query.where(LiveSession.status == status)
    if host_id is not None:
        query = query.where(LiveSession.host_id == host_id)
    sessions = list(db.session.scalars(query.order_by(LiveSession.id)))
    order = {SessionStatus.LIVE: 0, SessionStatus.SCHEDULED: 1, SessionStatus.ENDED: 2}

    def key(live: LiveSession) -> tuple:
        when = live.started_at or live.scheduled_at or live.created_at
        stamp = when.timestamp() if when else 0
        return (order.get(live.status, 3), -stamp if live.status == "ended" else stamp)

    return sorted(sessions, key=key)


def get_session(session_id: int) -> LiveSession:
    live = db.session.get(LiveSession, session_id)
    if live is None:
        raise SessionNotFound()
    return live


def _lock_session(session_id: int) -> LiveSession:
    """Start a write and lock the session row, so pins and status changes serialise."""
    begin_write()
    live = db.session.scalar(
        select(LiveSession).where(LiveSession.id == session_id).with_for_update()
    )
    if live is None:
        db.session.rollback()
        raise SessionNotFound()
    return live


def start_session(user: User, session_id: int, *, clock: Clock = utcnow) -> LiveSession:
    """Go live: the room hears `status` once the change is committed."""
    live = _lock_session(session_id)
    try:
        check_host(user, live)
        if live.status != SessionStatus.SCHEDULED:
            raise InvalidSessionTransition(
                f"The session is {live.status}; only scheduled ones start."
            )
    except Exception:
        db.session.rollback()
        raise
    live.status = SessionStatus.LIVE
    live.started_at = clock()
    db.session.commit()
    broadcast.emit("status", {"session_id": live.id, "status": live.status}, live.id)
    return live


def end_session(user: User, session_id: int, *, clock: Clock = utcnow) -> LiveSession:
    """End the stream: the current pin ends with it, the page turns into the replay."""
    live = _lock_session(session_id)
    try:
        check_host(user, live)
        if live.status == SessionStatus.ENDED:
            raise InvalidSessionTransition("The session has already ended.")
    except Exception:
        db.session.rollback()
        raise
    now = clock()
    had_pin = _end_current_pin(live.id, now)
    live.status = SessionStatus.ENDED
    live.ended_at = now
    db.session.commit()
    if had_pin:
        broadcast.emit("unpinned", {"session_id": live.id}, live.id)
    broadcast.emit("status", {"session_id": live.id, "status": live.status}, live.id)
    return live


def set_lineup(user: User, session_id: int, product_ids: list[int]) -> LiveSession:
    """Replace the products the host plans to feature, in the given order."""
    live = _lock_session(session_id)
    try:
        check_host(user, live)
        wanted = list(dict.fromkeys(product_ids))
        found = set(
            db.session.scalars(
                select(Product.id).where(Product.id.in_(wanted), Product.active.is_(True))
            )
        )
        missing = [str(pid) for pid in wanted if pid not in found]
        if missing:
            raise Invalid(fields={"product_ids": [f"No such product: {', '.join(missing)}."]})
    except Exception:
        db.session.rollback()
        raise
    live.lineup.clear()
    db.session.flush()
    for position, product_id in enumerate(wanted):
        live.lineup.append(LineupItem(product_id=product_id, position=position))
    db.session.commit()
    return live


def current_pin(session_id: int) -> Pin | None:
    return db.session.scalar(
        select(Pin).where(Pin.session_id == session_id, Pin.ended_at.is_(None)).limit(1)
    )


def _end_current_pin(session_id: int, now: datetime) -> bool:
    pins = db.session.scalars(
        select(Pin).where(Pin.session_id == session_id, Pin.ended_at.is_(None))
    ).all()
    for pin in pins:
        pin.ended_at = now
    return bool(pins)


# Why a live price is refused, in English for the API with the bound in minor units (like every
# amount there); the host console checks the same bounds first and says why in its own words.
PRICE_NOT_POSITIVE = N_("A live price must be more than 0.")
PRICE_ABOVE_REGULAR = "Must be at most %(bound)s, the regular price."
PRICE_BELOW_FLOOR = (
    "Must be at least %(bound)s, the cooperative's floor (%(percent)s%% of %(regular)s)."
)


def live_price_floor(regular_price: int, floor_percent: int) -> int:
    """The lowest live price a cooperative allows: its share of the regular price, rounded up."""
    return -(-regular_price * floor_percent // 100)


def _floor_percent(product: Product) -> int:
    """The cooperative's floor, read under a share lock so a concurrent change waits for us."""
    percent = db.session.scalar(
        select(Cooperative.live_price_floor_percent)
        .where(Cooperative.id == product.cooperative_id)
        .with_for_update(read=True)
    )
    return int(percent if percent is not None else 50)


def _price_error(price: object, regular: int, floor_percent: int) -> str | None:
    """Why `price` cannot be a live price of a variant at `regular`, or None when it can."""
    if isinstance(price, bool) or not isinstance(price, int):
        return N_("A price is a whole number of minor units.")
    if price <= 0:
        return PRICE_NOT_POSITIVE
    if price > regular:
        return PRICE_ABOVE_REGULAR % {"bound": regular}
    floor = live_price_floor(regular, floor_percent)
    if price < floor:
        return PRICE_BELOW_FLOOR % {"bound": floor, "percent": floor_percent, "regular": regular}
    return None


def _live_prices(product: Product, live_prices: dict | None) -> dict[int, int]:
    """Validate {variant_id: price}: the product's own variants, each live price above 0, at
    most the regular price and at least the cooperative's floor; a variant left out sells at
    its regular price, which must itself be above 0."""
    own = {variant.id: variant for variant in product.variants}
    prices = {variant_id: variant.price for variant_id, variant in own.items()}
    errors: dict[str, list[str]] = {}
    for raw_id, price in (live_prices or {}).items():
        try:
            variant_id = int(raw_id)
        except (TypeError, ValueError):
            errors[str(raw_id)] = [N_("Not a variant id.")]
            continue
        if variant_id not in own:
            errors[str(raw_id)] = [N_("This variant does not belong to the product.")]
        else:
            prices[variant_id] = price
    floor_percent = _floor_percent(product)
    for variant_id, price in prices.items():
        problem = _price_error(price, own[variant_id].price, floor_percent)
        if problem:
            errors.setdefault(str(variant_id), []).append(problem)
    if errors:
        raise InvalidPin(fields={"live_prices": errors})
    return prices


def pin_product(
    user: User,
    session_id: int,
    *,
    product_id: int,
    live_prices: dict | None = None,
    per_buyer_limit: int | None = None,
    clock: Clock = utcnow,
) -> Pin:
    """Feature a product at live prices; it replaces the current pin for every viewer at once."""
    live = _lock_session(session_id)
    try:
        check_host(user, live)
        if live.status != SessionStatus.LIVE:
            raise NotLive("Start the session before pinning products.")
        product = db.session.get(Product, product_id)
        if product is None or not product.active:
            raise InvalidPin(fields={"product_id": ["No such product."]})
        if per_buyer_limit is not None and (
            isinstance(per_buyer_limit, bool) or per_buyer_limit < 1
        ):
            raise InvalidPin(fields={"per_buyer_limit": ["Must be a positive whole number."]})
        prices = _live_prices(product, live_prices)
    except Exception:
        db.session.rollback()
        raise
    now = clock()
    _end_current_pin(live.id, now)
    pin = Pin(
        session_id=live.id, product_id=product.id, per_buyer_limit=per_buyer_limit, created_at=now
    )
    pin.prices = [PinPrice(variant_id=vid, live_price=price) for vid, price in prices.items()]
    db.session.add(pin)
    if not any(item.product_id == product.id for item in live.lineup):
        live.lineup.append(LineupItem(product_id=product.id, position=len(live.lineup)))
    # The pin's news and the answer are built from what this transaction loaded: read back
    # after the commit they took four more round trips while the flash crowd paid.
    commit_keeping_loaded()
    broadcast.emit("pinned", {"session_id": live.id, "pin": pin_data(pin)}, live.id)
    return pin


def unpin(user: User, session_id: int, *, clock: Clock = utcnow) -> None:
    """Take the current pin down; viewers' cards close."""
    live = _lock_session(session_id)
    try:
        check_host(user, live)
    except Exception:
        db.session.rollback()
        raise
    had_pin = _end_current_pin(live.id, clock())
    db.session.commit()
    if had_pin:
        broadcast.emit("unpinned", {"session_id": live.id}, live.id)


def pin_data(pin: Pin | None) -> dict | None:
    """The `pin` object of API.md, as the socket events and the session JSON carry it."""
    if pin is None:
        return None
    from live.schemas import PinSchema

    return PinSchema().dump(pin)


def featured_products(live: LiveSession) -> list[Product]:
    """What the session showed (its pins, then the rest of its line-up), for the replay page."""
    pinned = db.session.scalars(
        select(Pin.product_id).where(Pin.session_id == live.id).order_by(Pin.id)
    ).all()
    ids = list(dict.fromkeys([*pinned, *(item.product_id for item in live.lineup)]))
    products = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(ids)))}
    return [products[pid] for pid in ids if pid in products and products[pid].active]


def pinned_variant_sessions(variant_ids: list[int]) -> list[tuple[int, int, int]]:
    """(session_id, variant_id, stock) for variants featured in a live session's current pin."""
    rows = db.session.execute(
        select(Pin.session_id, Variant.id, Variant.stock)
        .join(PinPrice, PinPrice.pin_id == Pin.id)
        .join(Variant, Variant.id == PinPrice.variant_id)
        .join(LiveSession, LiveSession.id == Pin.session_id)
        .where(
            Pin.ended_at.is_(None),
            LiveSession.status == SessionStatus.LIVE,
            Variant.id.in_(variant_ids),
        )
    ).all()
    return [(int(s), int(v), int(stock)) for s, v, stock in rows]
