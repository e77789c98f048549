"""Domain news, sent only after the transaction that caused it has committed.

`orders` and `shop` send; `live` (and the cooperative dashboard) listen and broadcast.
Receivers get ids, never ORM objects. One signal is a question instead of news:
`placing_order` is sent inside the order's transaction, so `orders` can apply live's
per-buyer limits without importing `live`.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from blinker import NamedSignal, Namespace
from flask import Flask, current_app, has_app_context

log = logging.getLogger(__name__)


class News(NamedSignal):
    """A signal sent after a commit: a receiver that fails is logged, never raised.

    The change already happened, so the request that made it must still say so (a tap whose
    order was placed answers 201 even when Redis is gone and the news cannot leave), and one
    receiver's failure never keeps the news from the others.
    """

    def send(self, sender: Any = None, /, *, _async_wrapper=None, **kwargs: Any):
        if self.is_muted:
            return []
        results = []
        for receiver in self.receivers_for(sender):
            try:
                results.append((receiver, receiver(sender, **kwargs)))
            except Exception:
                log.exception("a receiver of %r failed after the commit", self.name)
                _forget_failed_reads()
        return results


def within(app: Flask) -> AbstractContextManager:
    """The app context a receiver reads in: the sender's own when it is `app`'s (its session
    still holds what the sender loaded, so reading it again costs no round trip), else a new
    one (news sent from a background task or another app)."""
    if has_app_context() and current_app._get_current_object() is app:
        return nullcontext()
    return app.app_context()


def _forget_failed_reads() -> None:
    """A receiver that failed in the database may leave an aborted transaction; only reads
    happened since the commit, so roll them back for the next receiver and the answer."""
    from shop.errors import discard_session
    from shop.extensions import db

    try:
        db.session.rollback()
    except Exception:  # the connection died: the next use gets a fresh session
        discard_session()


class _NewsNamespace(Namespace):
    def signal(self, name: str, doc: str | None = None) -> NamedSignal:
        if name not in self:
            self[name] = News(name, doc)
        return self[name]


_signals = _NewsNamespace()
_questions = Namespace()

#: sender=app, variant_ids=list[int]: these variants' stock changed.
stock_changed = _signals.signal("stock-changed")
#: sender=app, order_id=int: an order became paid.
order_paid = _signals.signal("order-paid")
#: sender=app, order_id=int, status=str: an order's status changed (any change).
order_changed = _signals.signal("order-changed")
#: sender=app, shipment_id=int, cooperative_id=int: a shipment was created or moved.
shipment_changed = _signals.signal("shipment-changed")
#: sender=app, buyer_id=int, variant_ids=list[int]: a cart order is being placed (inside its
#: transaction). A receiver answers with the `orders.services.PinLimit`s that bind these
#: variants right now (a live pin's per-buyer limit), or None.
#: A question, not news: a failing receiver fails the order (it cannot know the limits).
placing_order = _questions.signal("placing-order")
