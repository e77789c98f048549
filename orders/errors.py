"""The order service's named failures; `shop.errors` renders them in the API.md shape."""

from __future__ import annotations

from shop.errors import Conflict, DomainError, Invalid, NotFound
from shop.i18n import N_


class OrderNotFound(NotFound):
    code, message = "order_not_found", N_("No such order.")


class SoldOut(Conflict):
    code, message = "sold_out", N_("Sold out: not enough stock left.")

    def __init__(
        self, variant_id: int, message: str | None = None, *, left: int | None = None
    ) -> None:
        super().__init__(message, fields={"variant_id": [str(variant_id)]})
        self.variant_id = variant_id
        self.left = left  # the stock seen when refusing, if known


class LimitExceeded(Conflict):
    code, message = "limit_exceeded", N_("You have reached the per-buyer limit for this product.")

    def __init__(self, message: str | None = None, *, left: int | None = None) -> None:
        super().__init__(message)
        self.left = left  # units the buyer may still take under the pin, if known


class TooManyUnpaid(Conflict):
    code = "too_many_unpaid"
    message = N_("You have too many unpaid orders: pay or cancel one first.")


class InvalidTransition(Conflict):
    code, message = "invalid_transition", N_("The order cannot do that in its current state.")


class UnknownVariant(Invalid):
    code, message = "unknown_variant", N_("No such product variant.")


class PaymentUnavailable(DomainError):
    status, code = 503, "payment_unavailable"
    message = N_("The payment provider cannot be reached; your order is kept, try again shortly.")


class PaymentRateLimited(DomainError):
    status, code = 429, "payment_busy"
    message = N_("Too many payments are starting at once; try again in a moment.")
