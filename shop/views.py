"""Storefront pages: home, login, register, language, cart, product photos."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_login import login_user, logout_user

from shop.accounts import find_user_by_email, verify_password

bp = Blueprint("shop_pages", __name__)
blueprints = [bp]


def _safe_next(default: str = "/") -> str:
    """Only same-site relative paths are followed after login."""
    target = request.values.get("next") or default
    return target if target.startswith("/") and not target.startswith("//") else default


@bp.route("/")
def home():
    from shop.services import list_products

    return render_template("shop/home.html", products=list_products())


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        user = find_user_by_email(request.form.get("email", ""))
        if user and user.is_active and verify_password(user, request.form.get("password", "")):
            login_user(user)
            return redirect(_safe_next())
        error = "bad_credentials"
    return render_template("shop/login.html", error=error), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    return redirect(url_for("shop_pages.home"))


@bp.route("/language/<lang>")
def set_language(lang: str):
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    return redirect(_safe_next())


@bp.route("/cart")
def cart():
    return render_template("shop/cart.html")


@bp.route("/uploads/<path:filename>")
def photo(filename: str):
    return send_from_directory(current_app.config["UPLOAD_FOLDER"], filename, max_age=86400)
