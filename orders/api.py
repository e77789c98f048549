"""/api/v1 for orders, payments, fulfilment and reports (filled in by the order-service work)."""

from __future__ import annotations

blueprints: list = []
csrf_exempt: list = []
