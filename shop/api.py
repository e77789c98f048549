"""/api/v1 for accounts, cooperatives, products and variants: parse, call a service, dump."""

from __future__ import annotations

from flask_login import current_user, logout_user
from flask_smorest import Blueprint
from flask_wtf.csrf import generate_csrf

from shop import services
from shop.accounts import (
    authenticate,
    login_limit_per_account,
    login_limit_per_address,
    note_failed_login,
    require_user,
    roles_required,
    start_session,
)
from shop.admin_api import admin_bp
from shop.errors import DomainError
from shop.models import Role
from shop.schemas import (
    CooperativeListSchema,
    CooperativeSchema,
    CooperativeUpdateSchema,
    CsrfSchema,
    LoginSchema,
    PasswordChangeSchema,
    PhotoUploadSchema,
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
blueprints = [auth_bp, catalogue_bp, admin_bp]

ID = "int(max=2147483647)"  # larger ids cannot exist: 404 instead of an overflowing query
MANAGERS = (Role.COOP, Role.ADMIN)


class BadCredentials(DomainError):
    status, code, message = 401, "bad_credentials", "Wrong email or password."


def _viewer():
    return current_user._get_current_object() if current_user.is_authenticated else None


@auth_bp.route("/csrf")
@auth_bp.response(200, CsrfSchema)
def csrf_token():
    """The token every unsafe request sends as `X-CSRFToken`."""
    return {"csrf_token": generate_csrf()}


@auth_bp.route("/register", methods=["POST"])
@login_limit_per_address
@auth_bp.arguments(RegisterSchema)
@auth_bp.response(201, UserSchema)
def register(data: dict):
    """Create a buyer account and log it in."""
    user = services.create_user(**data, role=Role.BUYER)
    start_session(user)
    return user


@auth_bp.route("/login", methods=["POST"])
@login_limit_per_address
@login_limit_per_account
@auth_bp.arguments(LoginSchema)
@auth_bp.response(200, UserSchema)
def login(data: dict):
    """Log in with email and password (limited per address, and failures per account: 429)."""
    user = authenticate(data["email"], data["password"])
    if user is None:
        raise BadCredentials()
    start_session(user)
    return user


@auth_bp.route("/logout", methods=["POST"])
@auth_bp.response(204)
def logout():
    """End the session on the server: this cookie, and every copy of it, is refused after."""
    services.end_sessions(require_user().id)
    logout_user()
    return ""


@auth_bp.route("/password", methods=["POST"])
@login_limit_per_account
@auth_bp.arguments(PasswordChangeSchema)
@auth_bp.response(204)
def change_password(data: dict):
    """Change the password (422 `wrong_password` when the current one is wrong): every other
    session of the account ends; this one goes on."""
    user = require_user()
    try:
        services.change_password(user, **data)
    except services.WrongPassword:
        note_failed_login()
        raise
    start_session(user)
    return ""


@auth_bp.route("/me")
@auth_bp.response(200, UserSchema)
def me():
    return require_user()


@catalogue_bp.route("/cooperatives", methods=["GET"])
@catalogue_bp.response(200, CooperativeListSchema)
def list_cooperatives():
    return {"items": services.list_cooperatives()}


@catalogue_bp.route("/cooperatives", methods=["POST"])
@roles_required(Role.ADMIN)
@catalogue_bp.arguments(CooperativeSchema)
@catalogue_bp.response(201, CooperativeSchema)
def create_cooperative(data: dict):
    return services.create_cooperative(**data)


@catalogue_bp.route(f"/cooperatives/<{ID}:cooperative_id>", methods=["GET"])
@catalogue_bp.response(200, CooperativeSchema)
def get_cooperative(cooperative_id: int):
    return services.get_cooperative(cooperative_id)


@catalogue_bp.route(f"/cooperatives/<{ID}:cooperative_id>", methods=["PATCH"])
@roles_required(*MANAGERS)
@catalogue_bp.arguments(CooperativeUpdateSchema)
@catalogue_bp.response(200, CooperativeSchema)
def update_cooperative(data: dict, cooperative_id: int):
    """Admins change any field; the cooperative's own members only `live_price_floor_percent`."""
    return services.update_cooperative(require_user(*MANAGERS), cooperative_id, data)


@catalogue_bp.route("/products", methods=["GET"])
@catalogue_bp.arguments(ProductQuerySchema, location="query")
@catalogue_bp.response(200, ProductListSchema)
def list_products(query: dict):
    return {"items": services.list_products(**query)}


@catalogue_bp.route("/products", methods=["POST"])
@roles_required(*MANAGERS)
@catalogue_bp.arguments(ProductSchema)
@catalogue_bp.response(201, ProductSchema)
def create_product(data: dict):
    return services.create_product(require_user(*MANAGERS), **data)


@catalogue_bp.route(f"/products/<{ID}:product_id>", methods=["GET"])
@catalogue_bp.response(200, ProductSchema)
def get_product(product_id: int):
    return services.get_product(product_id, _viewer())


@catalogue_bp.route(f"/products/<{ID}:product_id>", methods=["PATCH"])
@roles_required(*MANAGERS)
@catalogue_bp.arguments(ProductUpdateSchema)
@catalogue_bp.response(200, ProductSchema)
def update_product(data: dict, product_id: int):
    return services.update_product(require_user(*MANAGERS), product_id, data)


@catalogue_bp.route(f"/products/<{ID}:product_id>/photo", methods=["POST"])
@roles_required(*MANAGERS)
@catalogue_bp.arguments(PhotoUploadSchema, location="files")
@catalogue_bp.response(200, ProductSchema)
def upload_photo(files: dict, product_id: int):
    """Multipart field `photo`: a JPEG, PNG or WebP image up to MAX_PHOTO_BYTES."""
    return services.set_product_photo(require_user(*MANAGERS), product_id, files["photo"].stream)


@catalogue_bp.route(f"/products/<{ID}:product_id>/variants", methods=["POST"])
@roles_required(*MANAGERS)
@catalogue_bp.arguments(VariantSchema)
@catalogue_bp.response(201, VariantSchema)
def add_variant(data: dict, product_id: int):
    return services.add_variant(require_user(*MANAGERS), product_id, **data)


@catalogue_bp.route(f"/variants/<{ID}:variant_id>", methods=["PATCH"])
@roles_required(*MANAGERS)
@catalogue_bp.arguments(VariantUpdateSchema)
@catalogue_bp.response(200, VariantSchema)
def update_variant(data: dict, variant_id: int):
    return services.update_variant(require_user(*MANAGERS), variant_id, data)


def init_app(app) -> None:
    """Honour JSON_AS_ASCII (Flask 3 reads it from `app.json`): Chinese travels as UTF-8."""
    app.json.ensure_ascii = app.config.get("JSON_AS_ASCII", True)  # type: ignore[attr-defined]
