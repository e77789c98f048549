"""The live page, the host console, scheduling, and live's hooks into the storefront."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf as csrf_token
from sqlalchemy import select

from live import history, identity, rooms, services, throttle, viewers
from live.checkout import saved_address
from live.models import LiveSession, SessionStatus
from live.schemas import ProductBriefSchema, SessionSchema, stream_kind
from shop import photos
from shop import services as shop_services
from shop.accounts import page_roles_required, require_user
from shop.database import release_connection
from shop.errors import DomainError
from shop.extensions import db
from shop.forms import FormInvalid, domain_errors, load, parse_int
from shop.models import Cooperative, Product, Role, User
from shop.schemas import CooperativeUpdateSchema

bp = Blueprint(
    "live_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/live/static",
)
blueprints = [bp]

SAMPLE_STREAM = "https://test-streams.mux.dev/x36xhzz/x36xhzz.m3u8"


@bp.route("/live/<int:session_id>")
def watch(session_id: int):
    """The live page: anyone may watch; buying asks for a login inside the sheet."""
    room = rooms.rooms().get(session_id)  # from memory while fresh, as for a joining viewer
    if _same_for_every_visitor(room):
        page = _pages().get(room, lambda: _render_watch(room, session_id))
    else:
        page = _render_watch(room, session_id)
    return identity.give_cookie(make_response(page))  # the browser's viewer id, for counts


def _render_watch(room: rooms.Room, session_id: int) -> str:
    data = {
        "session": room.page(viewers.count(session_id)),
        "logged_in": current_user.is_authenticated,
        "user_name": current_user.name if current_user.is_authenticated else None,
        "address": saved_address(current_user),
        "provider": current_app.config["PAYMENT_PROVIDER"],
        "currency": current_app.config["CURRENCY"],
    }
    featured = []
    if room.status == SessionStatus.ENDED:
        featured = services.featured_products(services.get_session(session_id))
        for product in featured:
            product.variants  # noqa: B018 - loaded now: the template shows their lowest price
    release_connection()  # everything shown is loaded; the render needs no connection
    return render_template("live/watch.html", live=room, data=data, featured=featured)


def _same_for_every_visitor(room: rooms.Room) -> bool:
    """Whether this request's page is the one every anonymous visitor of the room gets: no
    login, no query string (the page links back to its own URL), no flashed message."""
    return (
        not current_user.is_authenticated
        and not request.query_string
        and room.status != SessionStatus.ENDED
        and not session.get("_flashes")
    )


class AnonymousPages:
    """The live page as anonymous visitors get it, rendered once per room state and language.

    1,200 viewers arriving after a reminder each rendered the same page (a tenth of the
    servers' CPU during the arrival, py-spy). A `Room` is replaced by any news that
    changes it, so a page kept with the room it was rendered from is current exactly as long
    as that room is. Only the CSRF token differs between visitors: the kept page holds a
    marker in its place. The viewer count in it is the one at its rendering; the page shows
    the join's count a moment later.
    """

    MARK = "\x00csrf\x00"

    def __init__(self) -> None:
        self._kept: dict[tuple[int, str, str], tuple[rooms.Room, str]] = {}
        self._lock = threading.Lock()

    def get(self, room: rooms.Room, render: Callable[[], str]) -> str:
        token = csrf_token()
        key = (room.session_id, str(get_locale() or "zh"), current_app.config["PAYMENT_PROVIDER"])
        kept = self._kept.get(key)
        if kept is not None and kept[0] is room:
            return kept[1].replace(self.MARK, token)
        page = render()
        if token in page:
            with self._lock:
                self._kept[key] = (room, page.replace(token, self.MARK))
        return page


def _pages() -> AnonymousPages:
    pages = current_app.extensions.get(_PAGES)
    if pages is None:  # made once, not on every page load
        pages = current_app.extensions.setdefault(_PAGES, AnonymousPages())
    return pages


_PAGES = "farmlive.live_pages"


@bp.route("/host/live")
@page_roles_required(Role.HOST, Role.ADMIN)
def host_sessions():
    """A host's own sessions (an admin sees every one)."""
    host_id = None if current_user.role == Role.ADMIN else current_user.id
    return render_template("live/host_list.html", sessions=services.list_sessions(host_id=host_id))


@bp.route("/host/live/new", methods=["GET", "POST"])
@page_roles_required(Role.HOST, Role.ADMIN)
def new_session():
    """Schedule a session: title, description, cover, stream URL and time."""
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        from live.schemas import SessionCreateSchema

        raw = {
            "title": form.get("title", ""),
            "description": form.get("description", ""),
            "stream_url": form.get("stream_url") or None,
        }
        loaded = SessionCreateSchema().validate(raw)
        errors = {k: " ".join(map(str, v)) for k, v in loaded.items()}
        scheduled_at = _parse_local_time(form.get("scheduled_at", ""), errors)
        cover = _save_cover(request.files.get("cover"), errors)
        if not errors:
            data = SessionCreateSchema().load(raw)
            data["scheduled_at"] = scheduled_at
            live = services.create_session(current_user._get_current_object(), **data, cover=cover)
            return redirect(url_for("live_pages.console", session_id=live.id))
    return render_template("live/new_session.html", errors=errors, form=form), (
        422 if errors else 200
    )


def _parse_local_time(raw: str, errors: dict[str, str]) -> datetime | None:
    """A datetime-local value, read in the site's time zone."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        errors["scheduled_at"] = "Not a date and time."
        return None
    return (
        value.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
        if not value.tzinfo
        else value
    )


def _save_cover(file: Any, errors: dict[str, str]) -> str | None:
    """Store an uploaded cover the way product photos are stored (`shop.photos`): re-encoded
    as JPEG without metadata (GPS) or trailing data, pixels limited before decoding."""
    if file is None or not file.filename:
        return None
    try:
        return photos.store_upload(file.stream, prefix="cover")
    except DomainError as err:
        errors["cover"] = err.message
        return None


@bp.route("/host/live/<int:session_id>")
@page_roles_required()
def console(session_id: int):
    """The host console: its host or an admin; others are refused."""
    live = services.get_session(session_id)
    if not services.can_host(current_user, live):
        abort(403)
    products = db.session.scalars(
        select(Product).where(Product.active.is_(True)).order_by(Product.id)
    ).all()
    floors = dict(
        db.session.execute(select(Cooperative.id, Cooperative.live_price_floor_percent)).all()
    )
    data = {
        "session": SessionSchema().dump(live),
        "products": [
            {
                **ProductBriefSchema().dump(p),
                "variants": [
                    {
                        "id": v.id,
                        "name": v.name,
                        "price": v.price,
                        "stock": v.stock,
                        # the lowest live price the cooperative allows, checked before sending
                        "min_live_price": max(
                            1, services.live_price_floor(v.price, floors.get(p.cooperative_id, 50))
                        ),
                    }
                    for v in p.variants
                ],
            }
            for p in products
        ],
        "lineup": [item.product_id for item in live.lineup],
        "currency": current_app.config["CURRENCY"],
    }
    return render_template("live/console.html", live=live, data=data)


# --- a cooperative's pins: the history page and its section on the dashboard -----------------


def _pins_scope(user: User) -> Cooperative | None:
    """A coop member's own cooperative; for an admin the one asked for (`?cooperative_id=`)."""
    if user.role == Role.COOP:
        if user.cooperative_id is None:
            abort(403)
        return history.check_can_read(user, user.cooperative_id)
    wanted = request.args.get("cooperative_id", type=int)
    if wanted is None or not 0 < wanted < 2**31:
        return None
    return history.check_can_read(user, wanted)


def _pins_page(user: User, cooperative: Cooperative | None, errors: dict | None = None):
    page = render_template(
        "live/coop_pins.html",
        cooperative=cooperative,
        pins=history.cooperative_pins(cooperative.id if cooperative else None, limit=500),
        cooperatives=shop_services.list_cooperatives() if user.role == Role.ADMIN else [],
        errors=errors or {},
        form=request.form,
    )
    return page, 422 if errors else 200


@bp.route("/coop/pins", methods=["GET", "POST"])
@page_roles_required(Role.COOP, Role.ADMIN)
def coop_pins():
    """Every pin of the cooperative's products, newest first; the form sets its price floor."""
    user = require_user(Role.COOP, Role.ADMIN)
    cooperative = _pins_scope(user)
    if request.method == "GET" or cooperative is None:
        return _pins_page(user, cooperative)
    raw = {"live_price_floor_percent": parse_int(request.form.get("live_price_floor_percent"))}
    try:
        changes = load(CooperativeUpdateSchema(), raw)
        shop_services.update_cooperative(user, cooperative.id, changes)
    except FormInvalid as err:
        return _pins_page(user, cooperative, err.errors)
    except DomainError as err:
        if err.status == 403:
            raise
        return _pins_page(user, cooperative, domain_errors(err))
    flash(_("Live price floor saved."), "success")
    args = {"cooperative_id": cooperative.id} if user.role == Role.ADMIN else {}
    return redirect(url_for("live_pages.coop_pins", **args))


def coop_dashboard_section(cooperative_id: int | None) -> tuple[str, dict]:
    """The latest pins on the cooperative dashboard (/coop), linking to the whole history."""
    return "live/_coop_pins_section.html", {
        "pins": history.cooperative_pins(cooperative_id, limit=5),
        "cooperative_id": cooperative_id,
    }


# --- hooks the storefront and `seed-demo` run (shop never imports live) -----------------------


def storefront_section(*_args: Any, **_kwargs: Any) -> tuple[str, dict]:
    """ "Live now" and "coming up" on the home page."""
    live_now = services.list_sessions(status=SessionStatus.LIVE)
    coming_up = services.list_sessions(status=SessionStatus.SCHEDULED)[:6]
    return "live/_storefront.html", {"live_now": live_now, "coming_up": coming_up}


def seed_demo_session(*_args: Any, **_kwargs: Any) -> Iterator[str]:
    """One scheduled session for the demo host, with the mutton products as its line-up."""
    host = db.session.scalar(select(User).where(User.email == "host@farmlive.test"))
    if host is None:
        yield "live: no demo host (host@farmlive.test) yet; no session seeded"
        return
    title = "尉犁羊肉直播专场"
    existing = db.session.scalar(
        select(LiveSession).where(LiveSession.host_id == host.id, LiveSession.title == title)
    )
    if existing is not None:
        yield f"live: demo session already there (/live/{existing.id})"
        return
    live = services.create_session(
        host,
        title=title,
        description="王副县长带你看尉犁羊肉：从草场到餐桌。",
        stream_url=SAMPLE_STREAM,
        scheduled_at=datetime.now(ZoneInfo("UTC")) + timedelta(hours=2),
    )
    products = db.session.scalars(
        select(Product).where(Product.active.is_(True)).order_by(Product.id)
    ).all()
    mutton = [p.id for p in products if "羊" in p.name or "mutton" in p.name.lower()]
    lineup = mutton or [p.id for p in products[:3]]
    if lineup:
        services.set_lineup(host, live.id, lineup)
    yield f"live: scheduled demo session /live/{live.id} (console /host/live/{live.id})"


def init_app(app: Flask) -> None:
    throttle.check_settings(app)
    rooms.init_app(app)
    app.extensions.setdefault("farmlive.storefront_sections", []).append(storefront_section)
    app.extensions.setdefault("farmlive.seeders", []).append(seed_demo_session)
    app.extensions.setdefault("farmlive.coop_sections", []).append(coop_dashboard_section)
    app.jinja_env.globals.setdefault("stream_kind", stream_kind)
