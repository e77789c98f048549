"""Translation helpers: status and role names, and English service messages shown on pages.

Services raise errors with English messages (the JSON API keeps them for programs). Pages pass
every such message through `translate_message`, so a message marked with `N_` where it is
written (extracted by pybabel's default keywords) shows in the reader's language.
"""

from __future__ import annotations

import re

from flask import Flask
from flask_babel import gettext
from flask_babel import lazy_gettext as _l


def N_(message: str) -> str:  # noqa: N802 - the gettext convention pybabel extracts by default
    """Mark an English message for the catalog without translating it where it is raised."""
    return message


STATUS_LABELS = {
    # orders
    "pending_payment": _l("Pending payment"),
    "paid": _l("Paid"),
    "shipped": _l("Shipped"),
    "delivered": _l("Delivered"),
    "cancelled": _l("Cancelled"),
    "refunded": _l("Refunded"),
    # refunds (Order.refund_status)
    "refund_pending": _l("Refund pending"),
    "refund_failed": _l("Refund failed"),
    "refund_canceled": _l("Refund cancelled"),
    # shipments
    "pending": _l("Pending"),
    "packed": _l("Packed"),
    # live sessions
    "scheduled": _l("Scheduled"),
    "live": _l("Live"),
    "ended": _l("Ended"),
}

ROLE_LABELS = {
    "buyer": _l("Buyer"),
    "host": _l("Host"),
    "coop": _l("Cooperative member"),
    "admin": _l("Administrator"),
}

# What a page's script shows for an API error code (the API's own messages stay English).
ERROR_TEXTS = {
    "sold_out": _l("Sold out: not enough stock left."),
    "limit_exceeded": _l("You have reached the per-buyer limit for this product."),
    "too_many_unpaid": _l("You have too many unpaid orders: pay or cancel one first."),
    "not_pinned": _l("This product is not pinned in the live session right now."),
    "not_live": _l("The live session is not live."),
    "chat_closed": _l("Chat is closed: the session has ended."),
    "too_many_messages": _l("You are sending messages too fast."),
    "unauthorized": _l("Log in first."),
    "bad_credentials": _l("Wrong email or password."),
    "email_taken": _l("An account with this email already exists."),
    "forbidden": _l("You are not allowed to do this."),
    "not_host": _l("Only this session's host or an admin can do this."),
    "invalid": _l("Some fields are invalid."),
    "invalid_pin": _l("Some fields are invalid."),
    "invalid_transition": _l("This cannot be done in the current state."),
    "not_found": _l("Not found."),
    "order_not_found": _l("No such order."),
    "live_session_not_found": _l("No such live session."),
    "unknown_variant": _l("No such product variant."),
    "csrf": _l("CSRF token missing or invalid."),
    "too_many_requests": _l("Too many requests; wait a moment and try again."),
    "payment_unavailable": _l(
        "The payment provider cannot be reached; your order is kept, try again shortly."
    ),
    "payment_busy": _l("Too many payments are starting at once; try again in a moment."),
    "server_error": _l("Something went wrong on our side."),
    "unavailable": _l("A service we depend on is unavailable; try again."),
}

# Messages marshmallow, Werkzeug and Flask-WTF write in English, as they reach our pages.
_FIXED = (
    N_("Missing data for required field."),
    N_("Not a valid integer."),
    N_("Not a valid email address."),
    N_("Not a valid string."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Unknown field."),
    N_("Invalid input type."),
    N_("The CSRF token is missing."),
    N_("The CSRF token has expired."),
    N_("The CSRF token is invalid."),
    N_("The CSRF session token is missing."),
    N_("The browser (or proxy) sent a request that this server could not understand."),
    N_(
        "The server could not verify that you are authorized to access the URL requested. You"
        " either supplied the wrong credentials (e.g. a bad password), or your browser doesn't"
        " understand how to supply the credentials required."
    ),
    N_(
        "You don't have the permission to access the requested resource. It is either"
        " read-protected or not readable by the server."
    ),
    N_(
        "The requested URL was not found on the server. If you entered the URL manually please"
        " check your spelling and try again."
    ),
    N_("The method is not allowed for the requested URL."),
    N_("The data value transmitted exceeds the capacity limit."),
    N_(
        "The server encountered an internal error and was unable to complete your request."
        " Either the server is overloaded or there is an error in the application."
    ),
    # the live package's session form (live/views.py, live/schemas.py)
    N_("Not a date and time."),
    N_("Not an image."),
    N_("Use a JPEG, PNG, WebP or GIF image."),
    N_("An http(s) URL or a path on this site."),
    # words that fill the patterns below
    N_("order number"),
    N_("carrier"),
    N_("tracking number"),
)

# Messages built with values (f-strings in services, marshmallow's validators): the English
# pattern and its msgid; each captured value is itself shown as a status name or translated.
_PATTERNS = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"^Length must be between (\d+) and (\d+)\.$", N_("Between %(a)s and %(b)s characters.")),
        (r"^Shorter than minimum length (\d+)\.$", N_("At least %(a)s characters.")),
        (r"^Longer than maximum length (\d+)\.$", N_("At most %(a)s characters.")),
        (
            r"^Must be greater than or equal to (-?\d+) and less than or equal to (-?\d+)\.$",
            N_("Must be from %(a)s to %(b)s."),
        ),
        (r"^Must be greater than or equal to (-?\d+)\.$", N_("Must be %(a)s or more.")),
        (r"^Must be one of:? (.+)\.$", N_("Must be one of: %(a)s.")),
        (r"^The photo is larger than (\d+) KB\.$", N_("The photo is larger than %(a)s KB.")),
        (
            r"^Only JPEG, PNG or WebP photos are accepted \(this is (.+)\)\.$",
            N_("Only JPEG, PNG or WebP photos are accepted (this is %(a)s)."),
        ),
        (
            r"^Order (\S+) is (\w+); it cannot be refunded\.$",
            N_("Order %(a)s is %(b)s; it cannot be refunded."),
        ),
        (r"^Order (\S+) is (\w+), not shipped\.$", N_("Order %(a)s is %(b)s, not shipped yet.")),
        (r"^Order (\S+) is (\w+); nothing to pay\.$", N_("Order %(a)s is %(b)s; nothing to pay.")),
        (
            r"^Shipment of order (\S+) is (\w+); it cannot be packed\.$",
            N_("The shipment of order %(a)s is %(b)s; it cannot be packed."),
        ),
        (
            r"^Shipment of order (\S+) is (\w+); it cannot be shipped\.$",
            N_("The shipment of order %(a)s is %(b)s; it cannot be shipped."),
        ),
        (r"^No order numbered (.+)\.$", N_("No order numbered %(a)s.")),
        (
            r"^Order (\S+) has nothing from this cooperative\.$",
            N_("Order %(a)s has nothing from this cooperative."),
        ),
        (
            r"^Order (\S+) is (\w+); only pending or packed ship\.$",
            N_("Order %(a)s is %(b)s; only pending or packed orders ship."),
        ),
        (
            r"^The header must name the columns order number, carrier, tracking number; "
            r"missing: (.+)\.$",
            N_(
                "The header must name the columns order number, carrier, tracking number;"
                " missing: %(a)s."
            ),
        ),
        (r"^The (.+) is missing\.$", N_("The %(a)s is missing.")),
        (r"^The (.+) contains control characters\.$", N_("The %(a)s contains control characters.")),
        (
            r"^The (.+) is longer than (\d+) characters\.$",
            N_("The %(a)s is longer than %(b)s characters."),
        ),
        (
            r"^Order (\S+) appears again \(first on line (\d+)\)\.$",
            N_("Order %(a)s appears again (first on line %(b)s)."),
        ),
    )
)


def translate_message(message: object) -> str:
    """An English message from a service, schema or flash in the page's language."""
    text = str(message)
    if not text:
        return text
    translated = gettext(text)
    if translated != text:
        return translated
    for pattern, template in _PATTERNS:
        match = pattern.match(text)
        if match:
            translated = gettext(template)
            if translated == template:  # English page, or no translation yet
                return text
            values = [_translate_value(value) for value in match.groups()]
            return translated % dict(zip("abc", values, strict=False))
    return text


def _translate_value(value: str) -> str:
    """A value inside a message: a status code or a known word (each, in a list) as words."""
    parts = value.split(", ")
    words = [gettext(status_label(part)) for part in parts]
    return value if words == parts else "、".join(words)


def status_label(status: object) -> str:
    """An order, shipment or live-session status code as words."""
    return str(STATUS_LABELS.get(str(status), status))


def role_label(role: object) -> str:
    """A role code as words."""
    return str(ROLE_LABELS.get(str(role), role))


def error_texts() -> dict[str, str]:
    """API error codes and what to tell the reader, for a page's script (`|tojson`)."""
    return {code: str(text) for code, text in ERROR_TEXTS.items()}


def init_app(app: Flask) -> None:
    app.jinja_env.globals["error_texts"] = error_texts
    app.jinja_env.filters["tr"] = translate_message
    app.jinja_env.filters["status_label"] = status_label
    app.jinja_env.filters["role_label"] = role_label
