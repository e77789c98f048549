"""Accounts and roles: password hashing, login loading and the role checks every edge uses."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from functools import lru_cache, wraps
from typing import Any

from flask import Flask, Response, current_app, g, redirect, request, session, url_for
from flask_login import current_user, login_user
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from shop.concurrency import off_event_loop
from shop.errors import DomainError, Forbidden
from shop.extensions import db, limiter, login_manager
from shop.i18n import N_
from shop.models import Role, User


class NotLoggedIn(DomainError):
    status, code, message = 401, "unauthorized", N_("Log in first.")


def hash_password(password: str) -> str:
    """scrypt through Werkzeug: salted, memory-hard, current (tests may use cheaper parameters)."""
    return off_event_loop(generate_password_hash, password, _hash_method())


def verify_password(user: User | None, password: str) -> bool:
    """Check a password. Without a user it is checked against a dummy hash of the same method,
    so a login for an unknown email takes as long as one for a real account."""
    stored = user.password_hash if user is not None else _dummy_hash(_hash_method())
    return off_event_loop(check_password_hash, stored, password) and user is not None


def _hash_method() -> str:
    return current_app.config.get("PASSWORD_HASH_METHOD") or "scrypt"


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """The hash of a random password nobody knows, made once per process and method."""
    return off_event_loop(generate_password_hash, secrets.token_urlsafe(16), method)


def warm_dummy_hash(app: Flask) -> None:
    """Make the dummy hash at worker start, not during the first login for an unknown email."""
    with app.app_context():
        _dummy_hash(_hash_method())


def _per_address_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"]


def _per_account_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"]


def _account_key() -> str:
    """The account an attempt is for: the normalised email sent, else the logged-in user's
    (password change). Hashed, so the limiter's storage holds no addresses."""
    body = request.get_json(silent=True) if request.is_json else request.form
    email = body.get("email") if isinstance(body, Mapping) else None
    if not isinstance(email, str) and current_user.is_authenticated:
        email = current_user.email
    normal = str(email or "").strip().lower()
    return "account:" + hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _attempt_failed(_response: Response) -> bool:
    return bool(g.get("farmlive_login_failed"))


def note_failed_login() -> None:
    """Count this request against its account's limit (deducted once the response is made)."""
    g.farmlive_login_failed = True


# Shared scopes: the login page, the API login (and register, per address) and the password
# change draw on the same budgets. Per address every attempt counts; per account only failures,
# and a locked account is refused before its password is checked, right or wrong.
login_limit_per_address = limiter.shared_limit(
    _per_address_limit, scope="login-address", methods=["POST"]
)
login_limit_per_account = limiter.shared_limit(
    _per_account_limit,
    scope="login-account",
    key_func=_account_key,
    deduct_when=_attempt_failed,
    methods=["POST"],
)


def authenticate(email: str, password: str) -> User | None:
    """The active account with this email and password, else None (pages and API alike).

    Exactly one password hash is checked whether the email is known, unknown or deactivated,
    so the answer's timing does not tell which; every miss counts against the account's limit.
    """
    if not email or not password or len(email) > 254 or len(password) > 128:
        return None
    if "\x00" in email:  # no address has one, and PostgreSQL refuses it in a query
        return None
    user = find_user_by_email(email)
    if not verify_password(user, password) or user is None or not user.is_active:
        note_failed_login()
        return None
    return user


def start_session(user: User) -> None:
    """Log `user` in for PERMANENT_SESSION_LIFETIME after the last request; the cookie carries
    the user's session version, so raising it ends this session too."""
    session.permanent = True
    login_user(user)


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
        """The session's user, from "<id>:<session_version>" (User.get_id; a bare id, from a
        cookie issued before versions existed, is version 0). A deactivated account, or a
        cookie of an older version (logged out, password changed), is logged out."""
        ident, _, version = str(user_id).partition(":")
        try:
            user = db.session.get(User, int(ident))
            expected = int(version or 0)
        except (TypeError, ValueError, OverflowError):
            return None
        if user is None or not user.is_active or user.session_version != expected:
            return None
        return user
