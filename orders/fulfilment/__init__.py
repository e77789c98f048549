"""Cooperative fulfilment: reads what the order service wrote; see DESIGN.md."""
