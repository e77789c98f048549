"""Admin pages: the county e-commerce centre manages cooperatives and accounts."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from shop import services
from shop.accounts import page_roles_required, require_user
from shop.errors import DomainError
from shop.forms import FormInvalid, domain_errors, load, parse_int
from shop.models import Role
from shop.schemas import ROLES, CooperativeSchema, CooperativeUpdateSchema, UserCreateSchema

bp = Blueprint("admin", __name__, url_prefix="/admin")
ID = "int(max=2147483647)"


@bp.route("")
@page_roles_required(Role.ADMIN)
def index():
    return redirect(url_for("admin.users"))


def _users_page(errors: dict | None = None):
    role = request.args.get("role") if request.args.get("role") in ROLES else None
    page = render_template(
        "shop/admin_users.html",
        users=services.list_users(role=role),
        cooperatives=services.list_cooperatives(),
        roles=ROLES,
        role=role,
        errors=errors or {},
        form=request.form,
    )
    return page, 422 if errors else 200


@bp.route("/users", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN)
def users():
    """List accounts; the form creates an account of any role."""
    if request.method == "GET":
        return _users_page()
    data = request.form.to_dict()
    coop = data.pop("cooperative_id", "")
    data["cooperative_id"] = parse_int(coop) if coop else None
    try:
        user = services.create_user(**load(UserCreateSchema(), data))
    except FormInvalid as err:
        return _users_page(err.errors)
    except DomainError as err:
        return _users_page(domain_errors(err))
    flash(_("Account %(email)s created.", email=user.email), "ok")
    return redirect(url_for("admin.users"))


@bp.route(f"/users/<{ID}:user_id>/active", methods=["POST"])
@page_roles_required(Role.ADMIN)
def set_active(user_id: int):
    """Deactivate (or reactivate) an account; a deactivated user can no longer log in."""
    active = request.form.get("active") == "1"
    try:
        user = services.update_user(require_user(Role.ADMIN), user_id, {"active": active})
    except DomainError as err:
        if err.status == 404:
            raise
        flash(err.message, "error")
    else:
        if active:
            flash(_("Reactivated %(email)s.", email=user.email), "ok")
        else:
            flash(_("Deactivated %(email)s.", email=user.email), "ok")
    return redirect(url_for("admin.users"))


def _cooperatives_page(errors: dict | None = None, status: int = 200):
    page = render_template(
        "shop/admin_cooperatives.html",
        cooperatives=services.list_cooperatives(),
        errors=errors or {},
        form=request.form,
    )
    return page, 422 if errors else status


@bp.route("/cooperatives", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN)
def cooperatives():
    if request.method == "GET":
        return _cooperatives_page()
    try:
        services.create_cooperative(**load(CooperativeSchema(), request.form.to_dict()))
    except FormInvalid as err:
        return _cooperatives_page(err.errors)
    except DomainError as err:
        return _cooperatives_page(domain_errors(err))
    flash(_("Cooperative created."), "ok")
    return redirect(url_for("admin.cooperatives"))


@bp.route(f"/cooperatives/<{ID}:cooperative_id>", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN)
def cooperative(cooperative_id: int):
    coop = services.get_cooperative(cooperative_id)
    errors: dict = {}
    if request.method == "POST":
        data = request.form.to_dict()
        if "live_price_floor_percent" in data:
            data["live_price_floor_percent"] = parse_int(data["live_price_floor_percent"])
        try:
            changes = load(CooperativeUpdateSchema(), data)
            services.update_cooperative(require_user(Role.ADMIN), cooperative_id, changes)
        except FormInvalid as err:
            errors = err.errors
        except DomainError as err:
            errors = domain_errors(err)
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("admin.cooperatives"))
    page = render_template(
        "shop/admin_cooperative.html", cooperative=coop, errors=errors, form=request.form
    )
    return page, 422 if errors else 200
