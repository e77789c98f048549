"""Order pages and the Stripe webhook endpoint."""

from __future__ import annotations

blueprints: list = []
csrf_exempt: list = []
