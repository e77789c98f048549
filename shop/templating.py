"""Template filters and globals shared by every page."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_babel import get_locale

from shop.forms import yuan

CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€"}


def money(amount: int | None, currency: str | None = None) -> str:
    """Integer minor units to a display string: 8800 → ¥88.00."""
    if amount is None:
        return ""
    currency = currency or current_app.config["CURRENCY"]
    symbol = CURRENCY_SYMBOLS.get(currency, currency + " ")
    sign = "-" if amount < 0 else ""
    whole, fen = divmod(abs(int(amount)), 100)
    return f"{sign}{symbol}{whole:,}.{fen:02d}"


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time shown in the site's time zone."""
    if value is None:
        return ""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime(fmt)


def init_app(app: Flask) -> None:
    from shop import i18n

    i18n.init_app(app)
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["yuan"] = yuan  # fen as a price input shows it: 8800 → 88.00

    @app.context_processor
    def _globals() -> dict:
        return {
            "current_locale": str(get_locale() or "zh"),
            "payment_provider": app.config["PAYMENT_PROVIDER"],
            "currency": app.config["CURRENCY"],
        }
