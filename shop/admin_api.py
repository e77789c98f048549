"""/api/v1/users: the county e-commerce centre manages accounts of every role."""

from __future__ import annotations

from flask_smorest import Blueprint

from shop import services
from shop.accounts import require_user, roles_required
from shop.models import Role
from shop.schemas import (
    AdminUserSchema,
    UserCreateSchema,
    UserListSchema,
    UserQuerySchema,
    UserUpdateSchema,
)

admin_bp = Blueprint("users", __name__, url_prefix="/users", description="Accounts (admin)")


@admin_bp.route("", methods=["GET"])
@roles_required(Role.ADMIN)
@admin_bp.arguments(UserQuerySchema, location="query")
@admin_bp.response(200, UserListSchema)
def list_users(query: dict):
    return {"items": services.list_users(**query)}


@admin_bp.route("", methods=["POST"])
@roles_required(Role.ADMIN)
@admin_bp.arguments(UserCreateSchema)
@admin_bp.response(201, AdminUserSchema)
def create_user(data: dict):
    """Create an account of any role (a coop member with its `cooperative_id`)."""
    return services.create_user(**data)


@admin_bp.route("/<int(max=2147483647):user_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@admin_bp.arguments(UserUpdateSchema)
@admin_bp.response(200, AdminUserSchema)
def update_user(data: dict, user_id: int):
    """Rename or deactivate (`active: false`) an account; a deactivated user is logged out."""
    return services.update_user(require_user(Role.ADMIN), user_id, data)
