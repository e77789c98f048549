"""The cart, kept in the Flask session as `session["cart"] = {"<variant_id>": quantity}`.

That exact format is read by the order service's checkout page. Prices and stock always come
from the database when the cart is shown; the session holds only ids and quantities.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import session

from shop.extensions import db
from shop.models import Variant

KEY = "cart"
MAX_QUANTITY = 99  # per line: a household, not a wholesaler


@dataclass(frozen=True)
class CartLine:
    variant: Variant
    quantity: int

    @property
    def line_total(self) -> int:
        return self.variant.price * self.quantity


def contents() -> dict[int, int]:
    """The cart as {variant_id: quantity}, ignoring anything malformed in the session."""
    raw = session.get(KEY)
    result: dict[int, int] = {}
    if isinstance(raw, dict):
        for key, quantity in raw.items():
            if str(key).isdigit() and isinstance(quantity, int) and quantity > 0:
                result[int(key)] = quantity
    return result


def _save(items: dict[int, int]) -> None:
    session[KEY] = {str(k): v for k, v in items.items() if v > 0}


def sellable(variant_id: int) -> Variant | None:
    """The variant if it exists and its product is on sale."""
    variant = db.session.get(Variant, variant_id) if 0 < variant_id < 2**31 else None
    return variant if variant is not None and variant.product.active else None


def set_quantity(variant_id: int, quantity: int) -> int:
    """Set a line's quantity, capped by stock; 0 or less removes it. Returns what was kept."""
    items = contents()
    variant = sellable(variant_id)
    kept = 0 if variant is None else max(0, min(quantity, variant.stock, MAX_QUANTITY))
    items[variant_id] = kept
    _save(items)
    return kept


def add(variant_id: int, quantity: int = 1) -> int:
    """Add to a line (capped by stock); returns the line's new quantity."""
    return set_quantity(variant_id, contents().get(variant_id, 0) + max(quantity, 0))


def remove(variant_id: int) -> None:
    items = contents()
    items.pop(variant_id, None)
    _save(items)


def clear() -> None:
    session.pop(KEY, None)


def lines() -> tuple[list[CartLine], int]:
    """Each line with today's price, quantities capped by what is in stock now, and the total."""
    result = []
    for variant_id, quantity in contents().items():
        variant = sellable(variant_id)
        if variant is not None:
            result.append(CartLine(variant, min(quantity, variant.stock)))
    return result, sum(line.line_total for line in result)


def count() -> int:
    return sum(contents().values())
