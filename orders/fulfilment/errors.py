"""Fulfilment's named failures; `shop.errors` renders them in the API.md shape."""

from __future__ import annotations

from shop.errors import Invalid, NotFound
from shop.i18n import N_


class ShipmentNotFound(NotFound):
    code, message = "shipment_not_found", N_("No such shipment.")


class InvalidCsv(Invalid):
    """`fields` is `{"file": {"<line>": [messages]}}`: every bad line, by its line number."""

    code, message = "invalid_csv", N_("Some lines of the file are invalid; nothing was applied.")
