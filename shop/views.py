"""Storefront pages: home and search, product, cooperative, log in/out, register, cart."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from markupsafe import Markup

from shop import cart as shop_cart
from shop import services
from shop.accounts import (
    authenticate,
    login_limit_per_account,
    login_limit_per_address,
    start_session,
)
from shop.admin_views import bp as admin_bp
from shop.coop_views import bp as coop_bp
from shop.errors import DomainError, Invalid
from shop.forms import FormInvalid, domain_errors, load, parse_int
from shop.models import Role
from shop.schemas import RegisterSchema

bp = Blueprint("shop_pages", __name__)
blueprints = [bp, coop_bp, admin_bp]
ID = "int(max=2147483647)"


def safe_next(default: str = "/") -> str:
    """Only same-site paths are followed after login ('//evil', '/\\evil', 'http:' are not)."""
    target = (request.values.get("next") or "").strip()
    parts = urlsplit(target)
    if (
        not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or parts.scheme
        or parts.netloc
        or any(ord(c) < 32 for c in target)
    ):
        return default
    return target


def _storefront_sections() -> list[Markup]:
    """HTML of the sections other packages registered (live now, coming up), in order."""
    rendered = []
    for section in current_app.extensions.get("farmlive.storefront_sections", []):
        result = section()
        if result:
            template_name, context = result
            rendered.append(Markup(render_template(template_name, **context)))
    return rendered


@bp.route("/")
def home():
    """The storefront; with `?q=` it shows the matching products instead."""
    q = (request.args.get("q") or "").strip()[:100]
    if q:
        return render_template("shop/search.html", q=q, products=services.list_products(q=q))
    return render_template(
        "shop/home.html",
        sections=_storefront_sections(),
        cooperatives=services.list_cooperatives(),
        products=services.list_products(),
    )


@bp.route("/search")
def search():
    return redirect(url_for("shop_pages.home", q=request.args.get("q", "")))


@bp.route(f"/products/<{ID}:product_id>")
def product(product_id: int):
    viewer = current_user if current_user.is_authenticated else None
    item = services.get_product(product_id, viewer)
    return render_template("shop/product.html", product=item, in_cart=shop_cart.contents())


@bp.route(f"/cooperatives/<{ID}:cooperative_id>")
def cooperative(cooperative_id: int):
    coop = services.get_cooperative(cooperative_id)
    return render_template(
        "shop/cooperative.html",
        cooperative=coop,
        products=services.list_products(cooperative_id=coop.id),
    )


@bp.route("/login", methods=["GET", "POST"])
@login_limit_per_address
@login_limit_per_account
def login():
    error = None
    if request.method == "POST":
        user = authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if user is not None:
            start_session(user)
            return redirect(safe_next())
        error = "bad_credentials"
    return render_template(
        "shop/login.html", error=error, next=safe_next("")
    ), 401 if error else 200


@bp.route("/register", methods=["GET", "POST"])
@login_limit_per_address
def register():
    errors: dict = {}
    if request.method == "POST":
        try:
            data = load(RegisterSchema(), request.form.to_dict())
            user = services.create_user(**data, role=Role.BUYER)
        except FormInvalid as err:
            errors = err.errors
        except DomainError as err:
            errors = domain_errors(err)
        else:
            start_session(user)
            return redirect(safe_next())
    page = render_template(
        "shop/register.html", errors=errors, form=request.form, next=safe_next("")
    )
    return page, 422 if errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session on the server too: a copy of this cookie is refused after."""
    if current_user.is_authenticated:
        services.end_sessions(current_user.id)
    logout_user()
    return redirect(url_for("shop_pages.home"))


@bp.route("/language/<lang>")
def set_language(lang: str):
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    return redirect(safe_next())


@bp.route("/cart")
def cart():
    lines, total = shop_cart.lines()
    return render_template("shop/cart.html", lines=lines, total=total)


def _cart_form_ids() -> tuple[int, int]:
    variant_id = parse_int(request.form.get("variant_id"))
    quantity = parse_int(request.form.get("quantity", "1"))
    if not isinstance(variant_id, int) or not isinstance(quantity, int):
        raise Invalid(_("Choose a product and a whole number."))
    return variant_id, quantity


@bp.route("/cart/add", methods=["POST"])
def cart_add():
    variant_id, quantity = _cart_form_ids()
    before = shop_cart.contents().get(variant_id, 0)
    if quantity < 1 or shop_cart.sellable(variant_id) is None:
        flash(_("This product is not for sale."), "error")
    elif shop_cart.add(variant_id, quantity) < before + quantity:
        flash(_("Not enough in stock: your cart holds what is left."), "error")
    else:
        flash(_("Added to your cart."), "ok")
    return redirect(url_for("shop_pages.cart"))


@bp.route("/cart/update", methods=["POST"])
def cart_update():
    variant_id, quantity = _cart_form_ids()
    kept = shop_cart.set_quantity(variant_id, quantity)
    if kept < quantity:
        flash(_("Only %(n)s left in stock.", n=kept), "error")
    return redirect(url_for("shop_pages.cart"))


@bp.route("/cart/remove", methods=["POST"])
def cart_remove():
    variant_id, _quantity = _cart_form_ids()
    shop_cart.remove(variant_id)
    return redirect(url_for("shop_pages.cart"))


@bp.route("/uploads/<path:filename>")
def photo(filename: str):
    return send_from_directory(current_app.config["UPLOAD_FOLDER"], filename, max_age=86400)
