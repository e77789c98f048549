"""Sales reports: reads what the order service wrote; see DESIGN.md."""
