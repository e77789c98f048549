"""Accounts and roles: password hashing, login loading and the role checks every edge uses."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from shop.errors import DomainError, Forbidden
from shop.extensions import db, login_manager
from shop.i18n import N_
from shop.models import Role, User


class NotLoggedIn(DomainError):
    status, code, message = 401, "unauthorized", N_("Log in first.")


def hash_password(password: str) -> str:
    """scrypt through Werkzeug: salted, memory-hard, current (tests may use cheaper parameters)."""
    method = current_app.config.get("PASSWORD_HASH_METHOD") or "scrypt"
    return _off_event_loop(generate_password_hash, password, method)


def verify_password(user: User, password: str) -> bool:
    return _off_event_loop(check_password_hash, user.password_hash, password)


def _off_event_loop(work: Callable[..., Any], *args: Any) -> Any:
    """Run CPU-heavy hashing in a real thread under gevent, so a login cannot freeze the
    process's other requests and sockets (hashlib's scrypt releases the GIL)."""
    try:
        from gevent import get_hub
        from gevent.monkey import is_module_patched
    except ImportError:  # pragma: no cover - gevent is pinned, but the app runs without it
        return work(*args)
    if is_module_patched("threading"):
        return get_hub().threadpool.apply(work, args)
    return work(*args)


def login_limit() -> str:
    """LOGIN_RATE_LIMIT for the login and register endpoints, read per request (per app)."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def authenticate(email: str, password: str) -> User | None:
    """The active account with this email and password, else None (pages and API alike)."""
    if not email or not password or len(email) > 254 or len(password) > 128:
        return None
    if "\x00" in email:  # no address has one, and PostgreSQL refuses it in a query
        return None
    user = find_user_by_email(email)
    if user is None or not user.is_active or not verify_password(user, password):
        return None
    return user


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def require_user(*roles: str) -> User:
    """The logged-in user, refused with 401/403 unless they hold one of `roles` (any if none)."""
    if not current_user.is_authenticated:
        raise NotLoggedIn()
    if roles and current_user.role not in roles:
        raise Forbidden()
    return current_user._get_current_object()  # type: ignore[attr-defined]


def roles_required(*roles: str) -> Callable:
    """Decorator for API views: 401 when logged out, 403 for the wrong role."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            require_user(*roles)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def page_roles_required(*roles: str) -> Callable:
    """Decorator for pages: logged-out users go to the login page, the wrong role gets 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return redirect(url_for("shop_pages.login", next=request.full_path.rstrip("?")))
            if roles and current_user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper

    return decorator


def can_manage_cooperative(user: User, cooperative_id: int) -> bool:
    """Admins manage every cooperative; a coop member only their own."""
    return user.role == Role.ADMIN or (
        user.role == Role.COOP and user.cooperative_id == cooperative_id
    )


def init_app(app: Flask) -> None:
    login_manager.login_view = "shop_pages.login"

    @login_manager.user_loader
    def _load(user_id: str) -> User | None:
        """The session's user; a deactivated account is logged out on its next request."""
        try:
            user = db.session.get(User, int(user_id))
        except (TypeError, ValueError, OverflowError):
            return None
        return user if user is not None and user.is_active else None
