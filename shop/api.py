"""/api/v1 for accounts, cooperatives, products and variants: parse, call a service, dump."""

from __future__ import annotations

from flask import current_app
from flask_login import login_user, logout_user
from flask_smorest import Blueprint
from flask_wtf.csrf import generate_csrf

from shop import services
from shop.accounts import find_user_by_email, require_user, verify_password
from shop.errors import DomainError
from shop.extensions import limiter
from shop.models import Role
from shop.schemas import (
    CooperativeListSchema,
    CooperativeSchema,
    CsrfSchema,
    LoginSchema,
    ProductListSchema,
    ProductQuerySchema,
    ProductSchema,
    ProductUpdateSchema,
    RegisterSchema,
    UserSchema,
    VariantSchema,
    VariantUpdateSchema,
)

auth_bp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and sessions")
catalogue_bp = Blueprint("catalogue", __name__, description="Cooperatives, products, variants")
blueprints = [auth_bp, catalogue_bp]


class BadCredentials(DomainError):
    status, code, message = 401, "bad_credentials", "Wrong email or password."


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@auth_bp.route("/csrf")
@auth_bp.response(200, CsrfSchema)
def csrf_token():
    """The token every unsafe request sends as `X-CSRFToken`."""
    return {"csrf_token": generate_csrf()}


@auth_bp.route("/register", methods=["POST"])
@limiter.limit(_login_limit)
@auth_bp.arguments(RegisterSchema)
@auth_bp.response(201, UserSchema)
def register(data: dict):
    """Create a buyer account and log it in."""
    user = services.create_user(**data, role=Role.BUYER)
    login_user(user)
    return user


@auth_bp.route("/login", methods=["POST"])
@limiter.limit(_login_limit)
@auth_bp.arguments(LoginSchema)
@auth_bp.response(200, UserSchema)
def login(data: dict):
    """Log in with email and password (rate-limited per address)."""
    user = find_user_by_email(data["email"])
    if user is None or not user.is_active or not verify_password(user, data["password"]):
        raise BadCredentials()
    login_user(user)
    return user


@auth_bp.route("/logout", methods=["POST"])
@auth_bp.response(204)
def logout():
    require_user()
    logout_user()
    return ""


@auth_bp.route("/me")
@auth_bp.response(200, UserSchema)
def me():
    return require_user()


@catalogue_bp.route("/cooperatives", methods=["GET"])
@catalogue_bp.response(200, CooperativeListSchema)
def list_cooperatives():
    from sqlalchemy import select

    from shop.extensions import db
    from shop.models import Cooperative

    return {"items": db.session.scalars(select(Cooperative).order_by(Cooperative.id)).all()}


@catalogue_bp.route("/cooperatives", methods=["POST"])
@catalogue_bp.arguments(CooperativeSchema)
@catalogue_bp.response(201, CooperativeSchema)
def create_cooperative(data: dict):
    require_user(Role.ADMIN)
    return services.create_cooperative(**data)


@catalogue_bp.route("/products", methods=["GET"])
@catalogue_bp.arguments(ProductQuerySchema, location="query")
@catalogue_bp.response(200, ProductListSchema)
def list_products(query: dict):
    return {"items": services.list_products(**query)}


@catalogue_bp.route("/products", methods=["POST"])
@catalogue_bp.arguments(ProductSchema)
@catalogue_bp.response(201, ProductSchema)
def create_product(data: dict):
    user = require_user(Role.COOP, Role.ADMIN)
    return services.create_product(user, **data)


@catalogue_bp.route("/products/<int:product_id>", methods=["GET"])
@catalogue_bp.response(200, ProductSchema)
def get_product(product_id: int):
    return services.get_product(product_id)


@catalogue_bp.route("/products/<int:product_id>", methods=["PATCH"])
@catalogue_bp.arguments(ProductUpdateSchema)
@catalogue_bp.response(200, ProductSchema)
def update_product(data: dict, product_id: int):
    user = require_user(Role.COOP, Role.ADMIN)
    return services.update_product(user, product_id, data)


@catalogue_bp.route("/products/<int:product_id>/variants", methods=["POST"])
@catalogue_bp.arguments(VariantSchema)
@catalogue_bp.response(201, VariantSchema)
def add_variant(data: dict, product_id: int):
    user = require_user(Role.COOP, Role.ADMIN)
    return services.add_variant(user, product_id, **data)


@catalogue_bp.route("/variants/<int:variant_id>", methods=["PATCH"])
@catalogue_bp.arguments(VariantUpdateSchema)
@catalogue_bp.response(200, VariantSchema)
def update_variant(data: dict, variant_id: int):
    user = require_user(Role.COOP, Role.ADMIN)
    return services.update_variant(user, variant_id, data)
