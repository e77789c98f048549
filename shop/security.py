"""Trust at the edges: security headers on every response, the production start-up guard, and a
development server that does not announce itself.

The headers are written here rather than by flask-talisman: its last release (1.1.0) is from
August 2023, its defaults (HTTPS redirects, HSTS, Secure cookies from the app) are jobs nginx and
our own settings do here, and our policy depends on the request (the WebSocket origin) and on
the payment provider, which is a few lines either way.
"""

from __future__ import annotations

import re
from functools import lru_cache

from flask import Flask, Response, current_app, request
from werkzeug.serving import WSGIRequestHandler

# Secret keys that are examples, not secrets (compared case-insensitively; anything starting
# with "change-me"/"changeme", like deploy/farmlive.env.example's, is one too).
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "dev",
        "development",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "changeme",
        "change-me",
        "default",
        "test",
        "testing",
        "password",
        "your-secret-key",
        "replace-me",
        "test-secret-key",
        "scale-test-secret",
    }
)
MIN_SECRET_KEY_LENGTH = 32

STRIPE_SCRIPTS = "https://js.stripe.com https://*.js.stripe.com"
STRIPE_FRAMES = "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def init_app(app: Flask) -> None:
    check_production_config(app)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        """Every answer (pages, JSON, errors, static files) gets the same headers."""
        headers = response.headers
        config = current_app.config
        policy = content_security_policy(
            stripe=config.get("PAYMENT_PROVIDER") == "stripe",
            streams=config.get("CSP_STREAM_SOURCES") or "https:",
        )
        csp = " ".join(policy.replace("{ws}", _websocket_origin()).split())
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response


@lru_cache(maxsize=8)
def content_security_policy(*, stripe: bool, streams: str) -> str:
    """The policy, with `{ws}` where this request's WebSocket origin goes.

    Scripts, styles, fonts: this site only (no inline code; pages pass data as JSON blocks).
    Streams: the live page plays HLS through hls.js (fetches: connect-src; the video element gets a
    blob: URL; hls.js may run a blob: worker) or native HLS/video files (media-src), or embeds
    other players (frame-src), from CSP_STREAM_SOURCES. Stripe.js, when it is the provider, needs
    its script, its frames and its API. Nobody may frame us (the host console least of all).
    """
    directives = {
        "default-src": "'self'",
        "script-src": "'self'" + (f" {STRIPE_SCRIPTS}" if stripe else ""),
        "style-src": "'self'",
        "img-src": "'self' data: blob:" + (" https://*.stripe.com" if stripe else ""),
        "font-src": "'self'",
        "connect-src": f"'self' {{ws}} {streams}" + (" https://api.stripe.com" if stripe else ""),
        "media-src": f"'self' blob: {streams}",
        "worker-src": "'self' blob:",
        "frame-src": streams + (f" {STRIPE_FRAMES}" if stripe else ""),
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


def _websocket_origin() -> str:
    """ws(s):// of this host, for Socket.IO (older browsers do not count it as 'self')."""
    host = request.host
    if not _HOST.fullmatch(host):
        return ""
    return f"{'wss' if request.is_secure else 'ws'}://{host}"


def check_production_config(app: Flask) -> None:
    """With FARMLIVE_ENV=production, refuse to start on a SECRET_KEY anyone could know: anyone
    with it can sign a session cookie for any account."""
    if app.config.get("FARMLIVE_ENV") != "production":
        return
    key = str(app.config.get("SECRET_KEY") or "")
    lowered = key.strip().lower()
    if lowered in PLACEHOLDER_SECRET_KEYS or lowered.startswith(("change-me", "changeme")):
        raise RuntimeError(
            "SECRET_KEY is a placeholder. Set a random one, e.g. "
            '`python -c "import secrets; print(secrets.token_hex(32))"`, in the environment '
            "file (/etc/farmlive/farmlive.env), or unset it to use instance/secret_key."
        )
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise RuntimeError(
            f"SECRET_KEY has {len(key)} characters; production needs at least "
            f"{MIN_SECRET_KEY_LENGTH} random ones (e.g. secrets.token_hex(32))."
        )


class QuietRequestHandler(WSGIRequestHandler):
    """`python wsgi.py`'s request handler, without the `Server: Werkzeug/... Python/...` banner."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())
