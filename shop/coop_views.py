"""Catalogue pages for cooperative members (their own products) and admins (every product).

`/coop` itself is the fulfilment dashboard of the orders package; these pages live under
`/coop/products`. Prices are typed in yuan ("88.00") and stored as integer fen.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from shop import services
from shop.accounts import page_roles_required, require_user
from shop.errors import DomainError, NotFound
from shop.forms import FormInvalid, domain_errors, load, parse_int, variant_from_form
from shop.i18n import N_
from shop.models import Role, User
from shop.schemas import ProductSchema, ProductUpdateSchema, VariantSchema

bp = Blueprint("coop_catalogue", __name__, url_prefix="/coop/products")
MANAGERS = (Role.COOP, Role.ADMIN)
ID = "int(max=2147483647)"


def _managed_products(user: User) -> list:
    if user.role == Role.ADMIN:
        return services.list_products(include_hidden=True)
    return services.list_products(cooperative_id=user.cooperative_id, include_hidden=True)


def _managed_product(user: User, product_id: int):
    product = services.get_product(product_id, user)
    services.check_manages(user, product.cooperative_id)
    return product


@bp.route("")
@page_roles_required(*MANAGERS)
def index():
    user = require_user(*MANAGERS)
    return render_template("shop/coop_products.html", products=_managed_products(user))


@bp.route("/new", methods=["GET", "POST"])
@page_roles_required(*MANAGERS)
def new():
    """A product with its first variant, and optionally its photo."""
    user = require_user(*MANAGERS)
    errors: dict = {}
    if request.method == "POST":
        variant, price_error = variant_from_form(request.form, "variant_")
        coop_id = user.cooperative_id
        if user.role == Role.ADMIN:
            coop_id = parse_int(request.form.get("cooperative_id"))
        data = {
            "name": request.form.get("name", ""),
            "description": request.form.get("description", ""),
            "cooperative_id": coop_id,
            "variants": [variant],
        }
        try:
            loaded = load(
                ProductSchema(), data, errors={"variant_" + k: v for k, v in price_error.items()}
            )
            product = services.create_product(user, **loaded)
        except FormInvalid as err:
            errors = _variant_errors(err.errors)
        except DomainError as err:
            errors = domain_errors(err)
        else:
            flash(_("Product created."), "ok")
            _save_photo_if_sent(user, product.id)
            return redirect(url_for("coop_catalogue.edit", product_id=product.id))
    page = render_template(
        "shop/coop_product_new.html",
        errors=errors,
        form=request.form,
        cooperatives=services.list_cooperatives() if user.role == Role.ADMIN else [],
    )
    return page, 422 if errors else 200


def _save_photo_if_sent(user: User, product_id: int) -> None:
    upload = request.files.get("photo")
    if upload and upload.filename:
        try:
            services.set_product_photo(user, product_id, upload.stream)
        except DomainError as err:
            flash(_("The photo was not saved: %(reason)s", reason=err.message), "error")


def _variant_errors(errors: dict) -> dict:
    """Errors of the nested first variant shown beside the variant_* inputs."""
    nested = errors.pop("variants", None)
    if isinstance(nested, dict):
        for fields in nested.values():
            if isinstance(fields, dict):
                for key, messages in fields.items():
                    errors.setdefault("variant_" + key, messages)
    elif nested:
        errors["variant_name"] = nested
    return errors


def _edit_page(product, errors: dict | None = None, form_id: str = ""):
    page = render_template(
        "shop/coop_product_edit.html", product=product, errors=errors or {}, form_id=form_id
    )
    return page, 422 if errors else 200


@bp.route(f"/<{ID}:product_id>", methods=["GET", "POST"])
@page_roles_required(*MANAGERS)
def edit(product_id: int):
    """Name, description and whether the product is on sale."""
    user = require_user(*MANAGERS)
    product = _managed_product(user, product_id)
    if request.method == "GET":
        return _edit_page(product)
    data = {
        "name": request.form.get("name", ""),
        "description": request.form.get("description", ""),
        "active": request.form.get("active") == "on",
    }
    try:
        product = services.update_product(user, product_id, load(ProductUpdateSchema(), data))
    except FormInvalid as err:
        return _edit_page(product, err.errors, "product")
    flash(_("Saved."), "ok")
    return redirect(url_for("coop_catalogue.edit", product_id=product_id))


@bp.route(f"/<{ID}:product_id>/photo", methods=["POST"])
@page_roles_required(*MANAGERS)
def photo(product_id: int):
    user = require_user(*MANAGERS)
    product = _managed_product(user, product_id)
    upload = request.files.get("photo")
    try:
        services.set_product_photo(user, product_id, upload.stream if upload else None)
    except DomainError as err:
        return _edit_page(product, {"photo": [err.message]}, "photo")
    flash(_("Photo saved."), "ok")
    return redirect(url_for("coop_catalogue.edit", product_id=product_id))


@bp.route(f"/<{ID}:product_id>/variants", methods=["POST"])
@page_roles_required(*MANAGERS)
def add_variant(product_id: int):
    user = require_user(*MANAGERS)
    product = _managed_product(user, product_id)
    data, price_error = variant_from_form(request.form)
    try:
        services.add_variant(user, product_id, **load(VariantSchema(), data, errors=price_error))
    except FormInvalid as err:
        return _edit_page(product, err.errors, "new-variant")
    except DomainError as err:
        return _edit_page(product, domain_errors(err), "new-variant")
    flash(_("Variant added."), "ok")
    return redirect(url_for("coop_catalogue.edit", product_id=product_id))


@bp.route(f"/<{ID}:product_id>/variants/<{ID}:variant_id>", methods=["POST"])
@page_roles_required(*MANAGERS)
def update_variant(product_id: int, variant_id: int):
    user = require_user(*MANAGERS)
    product = _managed_product(user, product_id)
    if variant_id not in {v.id for v in product.variants}:
        raise NotFound(N_("No such variant."))
    data, price_error = variant_from_form(request.form)
    try:
        services.update_variant(user, variant_id, load(VariantSchema(), data, errors=price_error))
    except FormInvalid as err:
        return _edit_page(product, err.errors, f"variant-{variant_id}")
    except DomainError as err:
        return _edit_page(product, domain_errors(err), f"variant-{variant_id}")
    flash(_("Saved."), "ok")
    return redirect(url_for("coop_catalogue.edit", product_id=product_id))
