"""HTML form helpers: yuan text to integer fen, and marshmallow errors for templates.

Pages reuse the API's marshmallow schemas, so a form and the API accept exactly the same data.
"""

from __future__ import annotations

import re
from decimal import Decimal

from marshmallow import Schema, ValidationError

from shop.errors import DomainError
from shop.i18n import N_

_YUAN = re.compile(r"^\s*[¥￥]?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$")


class FormInvalid(Exception):
    """The form's fields and what is wrong with each, ready to show beside the inputs."""

    def __init__(self, errors: dict) -> None:
        super().__init__("invalid form")
        self.errors = errors


def parse_yuan(text: str) -> int:
    """'88', '88.5' or '88.00' yuan to 8800 fen, exactly (no float rounding)."""
    match = _YUAN.match(text or "")
    if not match:
        raise ValueError(N_("Enter a price in yuan, e.g. 88.00"))
    whole, frac = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(Decimal(whole) * 100 + Decimal(frac))


def yuan(fen: int | None) -> str:
    """Integer fen back to the form's text: 8800 → '88.00'."""
    return "" if fen is None else f"{fen // 100}.{fen % 100:02d}"


def parse_int(text: str | None) -> int | str:
    """A whole number from a form, or the text itself so the schema names the bad field."""
    raw = (text or "").strip()
    return int(raw) if re.fullmatch(r"-?\d{1,12}", raw) else raw


def variant_from_form(form, prefix: str = "") -> tuple[dict, dict]:
    """Read name, price (yuan) and stock inputs: the data, and an error for a bad price."""
    data: dict = {"name": form.get(prefix + "name", "")}
    data["stock"] = parse_int(form.get(prefix + "stock"))
    try:
        data["price"] = parse_yuan(form.get(prefix + "price", ""))
    except ValueError as err:
        return data, {"price": [str(err)]}
    return data, {}


def load(schema: Schema, data: dict, *, errors: dict | None = None, partial: bool = False) -> dict:
    """Validate form data with an API schema; any errors (with `errors` given) → FormInvalid."""
    errors = dict(errors or {})
    result: dict = {}
    try:
        result = schema.load(data, partial=partial)
    except ValidationError as err:
        errors = {**err.normalized_messages(), **errors}
    if errors:
        raise FormInvalid(errors)
    return result


def domain_errors(err: DomainError) -> dict:
    """A service's refusal as form errors (its fields, or the message under `_form`)."""
    return dict(err.fields) or {"_form": [err.message]}
