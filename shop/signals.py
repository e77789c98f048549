"""Domain news, sent only after the transaction that caused it has committed.

`orders` and `shop` send; `live` (and the cooperative dashboard) listen and broadcast.
Receivers get ids, never ORM objects. One signal is a question instead of news:
`placing_order` is sent inside the order's transaction, so `orders` can apply live's
per-buyer limits without importing `live`.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

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
placing_order = _signals.signal("placing-order")
