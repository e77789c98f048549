"""Who a viewer is, and from where: the identity viewer counts trust, and the client address.

A viewer is one logged-in user (`u:<user id>`) or one browser (`a:<anonymous id>`): the live
page gives every browser a random id in a cookie signed with SECRET_KEY, so a client can neither
invent ids nor pick someone else's. A socket with neither (no cookie, a forged one) may watch
but is not counted. Whatever the client sends in its events (the old `viewer_key`) is ignored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, request
from flask_login import current_user
from itsdangerous import BadSignature, Signer
from werkzeug.middleware.proxy_fix import ProxyFix

COOKIE_NAME = "farmlive_viewer"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie (Chrome caps at 400 days)
_SALT = "farmlive.live.viewer"
_ANONYMOUS_ID = re.compile(r"[0-9a-f]{32}")


def _signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=_SALT)


def anonymous_id(cookies: Mapping[str, str]) -> str | None:
    """The browser's anonymous id when its cookie carries our signature, else None."""
    raw = cookies.get(COOKIE_NAME)
    if not raw or len(raw) > 200:
        return None
    try:
        value = _signer().unsign(raw).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None
    return value if _ANONYMOUS_ID.fullmatch(value) else None


def give_cookie(response: Response) -> Response:
    """Give a browser without a valid viewer cookie a new random id (the live page calls this)."""
    if anonymous_id(request.cookies) is None:
        response.set_cookie(
            COOKIE_NAME,
            _signer().sign(secrets.token_hex(16)).decode("ascii"),
            max_age=COOKIE_MAX_AGE,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            httponly=True,
            samesite="Lax",
        )
    return response


def viewer_identities() -> tuple[str | None, str | None]:
    """(who counts, the browser's anonymous identity) for the current request or socket.

    Who counts is `u:<id>` when logged in, else `a:<id>` from a valid cookie, else None. The
    browser's anonymous identity lets a viewer who logs in stay one unique viewer.
    """
    anonymous = anonymous_id(request.cookies)
    browser = f"a:{anonymous}" if anonymous else None
    if current_user.is_authenticated:
        return f"u:{current_user.id}", browser
    return browser, browser


def client_address(environ: Mapping[str, Any] | None = None) -> str:
    """The client's address, trusting TRUSTED_PROXIES hops of X-Forwarded-For as ProxyFix does.

    Socket.IO's middleware sits outside the app's ProxyFix, so a socket's environ is the raw
    one; an environ ProxyFix already rewrote is taken as it is.
    """
    environ = dict(environ if environ is not None else request.environ)
    hops = int(current_app.config.get("TRUSTED_PROXIES") or 0)
    if hops and "werkzeug.proxy_fix.orig" not in environ:
        fixed = ProxyFix(lambda env, _start: env.get("REMOTE_ADDR"), x_for=hops)
        return fixed(environ, lambda *_: None) or "unknown"
    return environ.get("REMOTE_ADDR") or "unknown"
